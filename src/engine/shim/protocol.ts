/**
 * The shim socket's wire format (README.md): the client opens with one JSON line naming the op,
 * then both sides speak frames with docker's 8-byte header [type, 0, 0, 0, length BE32].
 */

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

/** The opening requests. */
export type Request =
  | { op: 'wait' }
  | { op: 'attach'; stdin?: boolean; stdout?: boolean; stderr?: boolean }
  | { op: 'resize'; cols: number; rows: number }
  | { op: 'kill'; signal?: string | number }
  | { op: 'status' }
  | { op: 'start'; config?: unknown };
