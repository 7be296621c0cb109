/**
 * The shim socket's wire format (README.md): the client opens with one JSON line naming the op,
 * then both sides speak frames with docker's 8-byte header [type, 0, 0, 0, length BE32].
 *
 * Versions: a request may carry `"v"`, the protocol version its client speaks; a request without
 * one is version 1 (what pier before the task API sent) and is served as before. A shim answers
 * `{"op":"version"}` with its own version and ops; a version-1 shim answers it with "unknown op",
 * which is how a client learns it is talking to a shim of an older pier (those keep running
 * across a pierd upgrade, so pierd meets them).
 */

/** The protocol version this shim and client speak. */
export const PROTOCOL_VERSION = 2;

/** The ops of each version (version 1: what every shim understands). */
export const OPS_V1 = ['wait', 'attach', 'resize', 'kill', 'status', 'start'] as const;
export const OPS_V2 = [...OPS_V1, 'version', 'exec', 'pause', 'resume', 'stats'] as const;

export const FRAME = {
  STDIN: 0,
  STDOUT: 1,
  STDERR: 2,
  /** shim → client: the ExitStatus JSON; the last frame on the connection */
  EXIT: 3,
  /** client → shim: close the container's stdin (empty payload) */
  STDIN_EOF: 4,
  /** shim → client: the answer to the opening request, JSON {ok:true,…} or {error:"…"} */
  REPLY: 5,
  /** client → shim during attach: JSON {cols, rows} */
  RESIZE: 6,
} as const;

/** Largest frame either side accepts (a start config, a 64 KiB read, an exit record all fit). */
export const MAX_FRAME = 4 << 20;
/** Longest opening request line. */
export const MAX_REQUEST = 1 << 20;

export function encodeFrame(type: number, payload: Uint8Array | string = ''): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(8);
  head[0] = type;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

export function jsonFrame(type: number, value: unknown): Buffer {
  return encodeFrame(type, JSON.stringify(value));
}

/**
 * Incremental decoder: push() chunks, get whole frames. Optionally first takes one '\n'-terminated
 * line (the shim side reads the opening request this way). Throws on a frame or line too long.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private wantLine: boolean;
  constructor(opts: { line?: boolean } = {}) {
    this.wantLine = opts.line ?? false;
  }

  push(chunk: Buffer): Array<{ line: string } | { type: number; payload: Buffer }> {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Array<{ line: string } | { type: number; payload: Buffer }> = [];
    if (this.wantLine) {
      const nl = this.buf.indexOf(10);
      if (nl < 0) {
        if (this.buf.length > MAX_REQUEST) throw new Error('request line too long');
        return out;
      }
      out.push({ line: this.buf.subarray(0, nl).toString('utf8') });
      this.buf = this.buf.subarray(nl + 1);
      this.wantLine = false;
    }
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4);
      if (len > MAX_FRAME) throw new Error(`frame of ${len} bytes is too large`);
      if (this.buf.length < 8 + len) break;
      out.push({ type: this.buf[0], payload: this.buf.subarray(8, 8 + len) });
      this.buf = this.buf.subarray(8 + len);
    }
    return out;
  }
}

/**
 * A process to start in the running container (the exec op). Fields left out come from the
 * container's own process in its bundle's config.json (capabilities, rlimits, apparmor… always do).
 */
export interface ExecSpec {
  args: string[];
  /** KEY=VALUE added to (and overriding) the container's environment */
  env?: string[];
  /** absolute, in the container */
  cwd?: string;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  /** a pty (pier's runtime only): one output stream, STDOUT */
  terminal?: boolean;
  /** initial terminal size */
  consoleSize?: { rows: number; cols: number };
  /** keep a stdin pipe for STDIN frames; without it the process's stdin is /dev/null */
  stdin?: boolean;
  /** no output frames: stdout and stderr are /dev/null (docker exec -d); EXIT still comes */
  detach?: boolean;
}

/** What an exec's EXIT frame carries. */
export interface ExecExit {
  /** shell-style: the exit code, or 128+n for signal n; 126/127 when the command could not run */
  exitCode: number;
  /** why the process did not start (then exitCode is 126, 127 or 1) */
  error?: string;
}

/** The opening requests; `v` is the client's protocol version (absent: 1). */
export type Request = { v?: number } & (
  | { op: 'wait' }
  | { op: 'attach'; stdin?: boolean; stdout?: boolean; stderr?: boolean }
  | { op: 'resize'; cols: number; rows: number }
  | { op: 'kill'; signal?: string | number }
  | { op: 'status' }
  | { op: 'start'; config?: unknown }
  | { op: 'version' }
  | { op: 'exec'; process: ExecSpec }
  | { op: 'pause' }
  | { op: 'resume' }
  | { op: 'stats' });

/** One line naming what is wrong with an exec spec, or undefined when it is fine. */
export function checkExecSpec(p: unknown): string | undefined {
  if (!p || typeof p !== 'object') return 'exec: process must be an object';
  const s = p as Record<string, unknown>;
  const noNul = (v: unknown) => typeof v === 'string' && !v.includes('\0');
  if (!Array.isArray(s.args) || s.args.length === 0 || !s.args.every(noNul)) return 'exec: args must be a non-empty list of strings';
  if (s.env !== undefined && (!Array.isArray(s.env) || !s.env.every((e) => noNul(e) && /^[^=]+=/.test(e as string)))) return 'exec: env must be a list of KEY=VALUE';
  if (s.cwd !== undefined && (!noNul(s.cwd) || !(s.cwd as string).startsWith('/'))) return `exec: working directory ${JSON.stringify(s.cwd)} is not absolute`;
  if (s.user !== undefined) {
    const u = s.user as Record<string, unknown>;
    const id = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 0xfffffffe;
    if (!u || typeof u !== 'object' || !id(u.uid) || !id(u.gid) || (u.additionalGids !== undefined && !(Array.isArray(u.additionalGids) && u.additionalGids.every(id)))) return 'exec: user must be {uid, gid, additionalGids?} with ids 0-4294967294';
  }
  for (const f of ['terminal', 'stdin', 'detach'] as const) if (s[f] !== undefined && typeof s[f] !== 'boolean') return `exec: ${f} must be a boolean`;
  if (s.consoleSize !== undefined) {
    const c = s.consoleSize as Record<string, unknown>;
    const dim = (v: unknown) => Number.isInteger(v) && (v as number) > 0 && (v as number) <= 65535;
    if (!c || typeof c !== 'object' || !dim(c.rows) || !dim(c.cols)) return 'exec: consoleSize must be {rows, cols} of 1-65535';
  }
  return undefined;
}

/**
 * The exit code of an exec whose process never ran, by docker's rules: 127 when the command was not
 * found, 126 when it was found but could not be run (not executable, a directory, permission).
 */
export function execFailureCode(message: string): number {
  if (/not found|no such file or directory/i.test(message) && !/chdir|cwd/i.test(message)) return 127;
  if (/permission denied|exec format error|is a directory|not executable/i.test(message)) return 126;
  return 126;
}
