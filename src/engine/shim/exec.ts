/**
 * The shim's side of the exec op (protocol v2): one process started in the running container for
 * one client connection, its stdio relayed as frames on that connection, its exit as the last
 * frame. The process never gets the client's fds — it has pipes the shim made (or /dev/null with
 * `detach`), and the shim closes its ends once the process is gone: a process the exec left behind
 * reads EOF on stdin and gets EPIPE on output, and cannot hold the client's connection open.
 */
import { readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Socket } from 'node:net';
import { messageOf, PierError } from '../../common/errors.ts';
import { childProcess } from '../../common/lazy.ts';
import { closeQuietly, fifoDir, inputFifo, outputFifo, removeDir, type FifoEnds } from '../../common/fifo.ts';
import type { Process, Spec } from '../../runtime/index.ts';
import { FRAME, encodeFrame, jsonFrame, type ExecExit, type ExecSpec } from './protocol.ts';
import type { ExecSlot, Runner } from './runner.ts';

/** Pause reading the process's output while the client has this much unsent. */
const HIGH_WATER = 1 << 20;
/** After the exit: how long to wait for the output pipes' EOF before taking what is in them. */
const EOF_WAIT_MS = 250;

/** The most a pipe can hold (the kernel's ceiling for F_SETPIPE_SZ; 1 MiB unless changed). */
function pipeMaxSize(): number {
  try {
    const n = Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8').trim());
    if (Number.isSafeInteger(n) && n > 0) return n;
  } catch { /* no procfs: the default */ }
  return 1024 * 1024;
}

/**
 * Window size of a terminal whose master someone else holds (pier-helper): set on the slave, the
 * process's fd 0, which the kernel turns into SIGWINCH for the foreground process group.
 */
export function setTerminalSize(pid: number, cols: number, rows: number): Promise<void> {
  if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols <= 0 || rows <= 0 || cols > 65535 || rows > 65535) {
    return Promise.reject(new PierError(`invalid terminal size ${cols}x${rows}`));
  }
  return new Promise((resolve, reject) => {
    childProcess().execFile('stty', ['-F', `/proc/${pid}/fd/0`, 'rows', String(rows), 'cols', String(cols)], {
      timeout: 5000, env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' },
    }, (err, _o, stderr) => {
      if (err) reject(new PierError(`resize: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

/** The container's own process from its bundle, with the exec's fields over it. */
export function execProcess(bundle: string, spec: ExecSpec): Process {
  const base = (JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as Spec).process;
  if (!base) throw new PierError('exec: the container\'s config.json has no process');
  const env = new Map<string, string>();
  for (const e of [...(base.env ?? []), ...(spec.env ?? [])]) { const i = e.indexOf('='); env.set(i < 0 ? e : e.slice(0, i), e); }
  const proc: Process = {
    ...base,
    args: spec.args,
    env: [...env.values()],
    cwd: spec.cwd ?? base.cwd,
    user: spec.user ?? base.user,
    terminal: !!spec.terminal,
  };
  delete proc.consoleSize;
  if (spec.terminal && spec.consoleSize) proc.consoleSize = { height: spec.consoleSize.rows, width: spec.consoleSize.cols };
  return proc;
}

interface Output { sock: Socket; fd: number; ended: boolean; type: number }

export class ExecSession {
  private client: Socket | undefined;
  private readonly runner: Runner;
  private readonly spec: ExecSpec;
  private readonly proc: Process;
  private readonly diag: (msg: string) => void;
  private outputs: Output[] = [];
  private stdin: Socket | undefined;
  private pid = 0;
  private replied = false;
  /** output read before the REPLY went out (runc's process can print before its pid file appears) */
  private held: Buffer[] | undefined = [];
  private discard = false;
  private over = false;
  /** resolves once the EXIT went out (or could not) */
  readonly done: Promise<void>;
  private doneResolve!: () => void;

  constructor(opts: { runner: Runner; proc: Process; spec: ExecSpec; client: Socket; diag: (msg: string) => void }) {
    this.runner = opts.runner;
    this.proc = opts.proc;
    this.spec = opts.spec;
    this.client = opts.client;
    this.diag = opts.diag;
    this.done = new Promise((r) => { this.doneResolve = r; });
  }

  /** Start the process: REPLY {ok, pid, tty} once it runs (pid 0 when it never did), output frames, EXIT. */
  start(): void {
    const detach = !!this.spec.detach;
    const slots: [ExecSlot, ExecSlot, ExecSlot] = ['ignore', 'ignore', 'ignore'];
    const made: FifoEnds[] = [];
    if (!detach) {
      const dir = fifoDir();
      try {
        const input = this.spec.stdin ? inputFifo(dir, 'stdin') : undefined;
        if (input) made.push(input);
        const out = outputFifo(dir, 'stdout');
        made.push(out);
        const err = outputFifo(dir, 'stderr');
        made.push(err);
        slots[0] = input?.theirs ?? 'ignore';
        slots[1] = out.theirs;
        slots[2] = err.theirs;
        this.readOutput(out.ours, FRAME.STDOUT);
        this.readOutput(err.ours, FRAME.STDERR);
        if (input) {
          this.stdin = new Socket({ fd: input.ours, readable: false, writable: true });
          // EPIPE: the process closed its stdin or exited; what was sent had nowhere to go
          this.stdin.on('error', () => { this.stdin = undefined; });
        }
      } catch (err) {
        for (const f of made) { closeQuietly(f.ours); closeQuietly(f.theirs); }
        this.reply({ error: `cannot make the exec's stdio pipes: ${messageOf(err)}` });
        this.finishNow();
        return;
      } finally {
        removeDir(dir);
      }
    }
    // the runner closes the slots once the process has them
    const h = this.runner.exec(this.proc, slots, { detach });
    void h.started.then((pid) => {
      this.pid = pid;
      // it never ran: what came out is the runtime's own complaint (runc prints it on the process's
      // stderr too), which the EXIT frame carries once, as one line
      if (pid === 0) this.discard = true;
      this.reply({ ok: true, pid, tty: !!this.proc.terminal });
    });
    // the process is gone: whoever it left reading its stdin gets EOF, not what the client sends next
    void h.gone.then(() => this.closeStdin());
    void h.exit.then(async (e) => {
      await h.started;
      await this.flushOutputs();
      this.closeStdin();
      this.sendExit(e);
    }, (err) => this.sendExit({ exitCode: 126, error: messageOf(err) }));
  }

  private reply(v: unknown): void {
    if (this.replied) return;
    this.replied = true;
    this.write(jsonFrame(FRAME.REPLY, v));
    const held = this.discard ? [] : this.held ?? [];
    this.held = undefined;
    for (const b of held) this.write(b);
    for (const o of this.outputs) o.sock.resume();
  }

  /** An output frame: after the REPLY, in order (the client reads the REPLY first). */
  private output(frame: Buffer): boolean {
    if (this.discard) return true;
    if (this.held) {
      this.held.push(frame);
      // bounded: past HIGH_WATER the reader pauses until the REPLY has gone out
      return this.held.reduce((n, b) => n + b.length, 0) <= HIGH_WATER;
    }
    return this.write(frame);
  }

  private write(buf: Buffer): boolean {
    const c = this.client;
    if (!c || c.destroyed || !c.writable) return true;
    c.write(buf);
    return c.writableLength <= HIGH_WATER;
  }

  private readOutput(fd: number, type: number): void {
    const o: Output = { fd, type, ended: false, sock: new Socket({ fd, readable: true, writable: false }) };
    o.sock.on('data', (chunk: Buffer) => {
      if (this.output(encodeFrame(type, chunk))) return;
      // a slow client slows the process (as docker's attach does) instead of losing output
      o.sock.pause();
      if (this.held) return; // resumed by reply()
      this.client?.once('drain', () => o.sock.resume());
      this.client?.once('close', () => o.sock.resume());
    });
    o.sock.on('error', (err) => this.diag(`exec output: ${messageOf(err)}`));
    o.sock.once('end', () => { o.ended = true; });
    o.sock.once('close', () => { o.ended = true; });
    this.outputs.push(o);
  }

  /**
   * The process exited: what it wrote is sent. EOF comes at once unless something it left behind
   * holds the pipe; then what is already in the pipe (at most what a pipe holds) is taken without
   * waiting for an EOF that might never come, and the pipe is closed: the leftover writer gets EPIPE.
   */
  private async flushOutputs(): Promise<void> {
    for (const o of this.outputs) o.sock.resume();
    const deadline = Date.now() + EOF_WAIT_MS;
    while (this.outputs.some((o) => !o.ended) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const limit = pipeMaxSize();
    const buf = Buffer.allocUnsafe(64 * 1024);
    for (const o of this.outputs) {
      if (!o.ended && !o.sock.destroyed) {
        for (let total = 0; total < limit;) {
          let n: number;
          try { n = readSync(o.fd, buf, 0, Math.min(buf.length, limit - total), null); } catch { break; } // EAGAIN: empty
          if (n <= 0) break;
          total += n;
          this.output(encodeFrame(o.type, Buffer.from(buf.subarray(0, n))));
        }
      }
      o.ended = true;
      o.sock.destroy();
    }
  }

  private closeStdin(): void {
    this.stdin?.destroy();
    this.stdin = undefined;
  }

  private sendExit(e: ExecExit): void {
    if (this.over) return;
    this.reply({ ok: true, pid: 0, tty: !!this.proc.terminal });
    this.write(jsonFrame(FRAME.EXIT, e));
    this.finishNow();
  }

  private finishNow(): void {
    this.over = true;
    this.client?.end();
    this.client = undefined;
    this.doneResolve();
  }

  /** A frame from the client: stdin, its end, a terminal size. */
  frame(type: number, payload: Buffer): void {
    switch (type) {
      case FRAME.STDIN:
        if (this.stdin?.writable && payload.length && !this.stdin.write(payload)) {
          // the process is not reading: stop reading the client until it does
          const c = this.client;
          c?.pause();
          this.stdin.once('drain', () => c?.resume());
        }
        return;
      case FRAME.STDIN_EOF:
        if (this.stdin) { this.stdin.end(); this.stdin = undefined; }
        return;
      case FRAME.RESIZE:
        try {
          const { cols, rows } = JSON.parse(payload.toString('utf8')) as { cols: number; rows: number };
          this.resize(Number(cols), Number(rows)).catch((err) => this.diag(`exec resize: ${messageOf(err)}`));
        } catch { /* a bad resize frame is ignored */ }
        return;
      default:
        // unknown frames are ignored: room for newer clients
    }
  }

  resize(cols: number, rows: number): Promise<void> {
    if (!this.proc.terminal) return Promise.reject(new PierError('the exec has no terminal'));
    if (this.pid <= 0 || this.over) return Promise.reject(new PierError('the exec is not running'));
    return setTerminalSize(this.pid, cols, rows);
  }

  /**
   * The client hung up: the process goes on (as a detached docker exec does) with its stdin at
   * EOF; its output is read and dropped so it does not block on a full pipe.
   */
  clientGone(): void {
    this.client = undefined;
    this.closeStdin();
    for (const o of this.outputs) o.sock.resume();
  }
}
