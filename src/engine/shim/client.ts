/** pierd's side of the shim socket (protocol in README.md), and the exit file reader. */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { PierError } from '../../common/errors.ts';
import { FRAME, FrameReader, PROTOCOL_VERSION, encodeFrame, jsonFrame, type ExecExit, type ExecSpec } from './protocol.ts';
import type { ExitStatus, StartResult } from './types.ts';

/** The exit record a shim wrote, or undefined while there is none (or it is unreadable). */
export function readExit(exitFile: string): ExitStatus | undefined {
  try {
    const v = JSON.parse(readFileSync(exitFile, 'utf8')) as ExitStatus;
    return v && typeof v.exitCode === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Connect to a unix socket; rejects with Node's error (code ENOENT / ECONNREFUSED when nobody listens). */
export function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    s.once('connect', () => { s.removeListener('error', reject); resolve(s); });
    s.once('error', reject);
  });
}

export interface ShimStatus {
  state: 'idle' | 'starting' | 'created' | 'running' | 'exiting' | 'exited';
  id?: string;
  shimPid: number;
  initPid: number;
  exit?: ExitStatus;
}

export interface AttachOptions {
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** called once the shim has registered this client: output from now on reaches it */
  onAttached?: (info: { stdin: boolean; tty: boolean }) => void;
}

/** A connection whose opening request the shim accepted; frames follow on `sock`. */
export interface ShimStream<R> {
  sock: Socket;
  reply: R;
  /** bytes that came after the REPLY frame (the first frames of the stream), to be read first */
  rest: Buffer;
}

export interface ExecOptions {
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** called with the process's host pid once it runs */
  onStarted?: (pid: number) => void;
}

/** What a shim of an older pier (protocol 1) answers an op it does not know, made into one clear line. */
function olderShim(op: string, message: string): Error {
  if (/^unknown op/.test(message)) {
    return new PierError(`the container's monitor (shim) is from an older pier and has no ${op} op: restart the container to use it`);
  }
  return new PierError(message);
}

export class ShimClient {
  readonly socket: string;
  /** the connection made by connect(), used by the first op */
  private first: Socket | undefined;
  private readonly open = new Set<Socket>();
  private attachSock: Socket | undefined;

  private constructor(socket: string, first: Socket) {
    this.socket = socket;
    this.first = first;
    this.track(first);
  }

  /** Rejects (ENOENT/ECONNREFUSED) when the shim is gone: then read the exit file. */
  static async connect(socket: string): Promise<ShimClient> {
    return new ShimClient(socket, await dial(socket));
  }

  private track(s: Socket): Socket {
    this.open.add(s);
    s.on('close', () => this.open.delete(s));
    s.on('error', () => undefined);
    return s;
  }

  private async conn(): Promise<Socket> {
    if (this.first && !this.first.destroyed) {
      const s = this.first;
      this.first = undefined;
      return s;
    }
    return this.track(await dial(this.socket));
  }

  /** Send a request and collect frames until the connection ends. */
  private async exchange<T>(req: object, onFrame: (type: number, payload: Buffer, done: (v: T) => void, fail: (e: Error) => void) => void, closedEarly: string): Promise<T> {
    const sock = await this.conn();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const done = (v: T) => { if (!settled) { settled = true; resolve(v); } };
      const fail = (e: Error) => { if (!settled) { settled = true; reject(e); } };
      const reader = new FrameReader();
      sock.on('data', (chunk: Buffer) => {
        let frames;
        try { frames = reader.push(chunk); } catch (err) { fail(err as Error); sock.destroy(); return; }
        for (const f of frames) if ('type' in f) onFrame(f.type, f.payload, done, fail);
      });
      sock.on('close', () => fail(new PierError(closedEarly)));
      sock.write(JSON.stringify(req) + '\n');
    });
  }

  private reply<T>(req: object): Promise<T> {
    return this.exchange<T>(req, (type, payload, done, fail) => {
      if (type !== FRAME.REPLY) return;
      const v = JSON.parse(payload.toString('utf8')) as { error?: string };
      if (v.error) fail(new PierError(v.error));
      else done(v as T);
    }, `the shim hung up without answering ${JSON.stringify(req)}`);
  }

  /**
   * The shim's protocol version: 1 for a shim of an older pier (it answers "unknown op"), else what
   * it reports.
   */
  async version(): Promise<number> {
    try {
      const r = await this.reply<{ version?: number }>({ op: 'version', v: PROTOCOL_VERSION });
      return typeof r.version === 'number' ? r.version : 1;
    } catch (err) {
      if (/^unknown op/.test((err as Error).message)) return 1;
      throw err;
    }
  }

  /**
   * Send an opening request and wait for its REPLY; the connection then carries the stream's frames.
   * A REPLY error rejects (an older shim's "unknown op" as a line saying so).
   */
  async openStream<R>(req: { op: string; [k: string]: unknown }): Promise<ShimStream<R>> {
    const sock = await this.conn();
    return new Promise<ShimStream<R>>((resolve, reject) => {
      const reader = new FrameReader();
      let buf = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 8) return;
        const len = buf.readUInt32BE(4);
        if (buf.length < 8 + len) return;
        sock.off('data', onData);
        sock.off('close', onClose);
        sock.pause();
        let frames;
        try { frames = reader.push(buf.subarray(0, 8 + len)); } catch (err) { sock.destroy(); reject(err); return; }
        const f = frames[0];
        if (!f || !('type' in f) || f.type !== FRAME.REPLY) { sock.destroy(); reject(new PierError(`the shim answered ${JSON.stringify(req.op)} with frame type ${f && 'type' in f ? f.type : '?'} instead of a reply`)); return; }
        let v: R & { error?: string };
        try { v = JSON.parse(f.payload.toString('utf8')) as R & { error?: string }; } catch { sock.destroy(); reject(new PierError('the shim sent a reply that is not JSON')); return; }
        if (v.error) { sock.destroy(); reject(olderShim(req.op, v.error)); return; }
        resolve({ sock, reply: v, rest: buf.subarray(8 + len) });
      };
      const onClose = () => reject(new PierError(`the shim hung up without answering ${JSON.stringify(req.op)}`));
      sock.on('data', onData);
      sock.once('close', onClose);
      sock.write(JSON.stringify({ ...req, v: PROTOCOL_VERSION }) + '\n');
    });
  }

  /** Start a process in the running container (protocol v2); the stream ends with an ExecExit. */
  openExec(spec: ExecSpec): Promise<ShimStream<{ pid: number; tty: boolean }>> {
    return this.openStream<{ pid: number; tty: boolean }>({ op: 'exec', process: spec });
  }

  /**
   * Run a process in the container and wait for its end: stdin/stdout/stderr relayed from and to
   * the given streams (without stdout and stderr: -d's /dev/null).
   */
  async exec(spec: ExecSpec, opts: ExecOptions = {}): Promise<ExecExit & { pid: number }> {
    const s = await this.openExec({ ...spec, stdin: !!opts.stdin, ...(opts.stdout || opts.stderr ? {} : { detach: true }) });
    const { sock } = s;
    const pid = s.reply.pid;
    if (pid > 0) opts.onStarted?.(pid);
    let unpipe = () => {};
    if (opts.stdin) unpipe = pumpStdin(opts.stdin, sock);
    try {
      return await new Promise<ExecExit & { pid: number }>((resolve, reject) => {
        const reader = new FrameReader();
        let settled = false;
        const onChunk = (chunk: Buffer) => {
          let frames;
          try { frames = reader.push(chunk); } catch (err) { settled = true; reject(err); sock.destroy(); return; }
          for (const f of frames) {
            if (!('type' in f)) continue;
            if (f.type === FRAME.STDOUT) opts.stdout?.write(f.payload);
            else if (f.type === FRAME.STDERR) opts.stderr?.write(f.payload);
            else if (f.type === FRAME.EXIT) { settled = true; resolve({ ...(JSON.parse(f.payload.toString('utf8')) as ExecExit), pid }); }
          }
        };
        sock.on('data', onChunk);
        sock.on('close', () => { if (!settled) reject(new PierError('the shim hung up before the exec\'d process exited')); });
        if (s.rest.length) onChunk(s.rest);
        sock.resume();
      });
    } finally {
      unpipe();
      sock.destroy();
    }
  }

  pause(): Promise<void> {
    return this.reply({ op: 'pause', v: PROTOCOL_VERSION }).then(() => undefined, (err: Error) => { throw olderShim('pause', err.message); });
  }

  resume(): Promise<void> {
    return this.reply({ op: 'resume', v: PROTOCOL_VERSION }).then(() => undefined, (err: Error) => { throw olderShim('resume', err.message); });
  }

  /** What the runtime reports of the container's cgroup (the same numbers as daemon/runtime.ts ContainerStats). */
  stats(): Promise<{ cpuNanos: number; memoryUsage: number; memoryLimit: number; pids: number }> {
    return this.reply<{ stats: { cpuNanos: number; memoryUsage: number; memoryLimit: number; pids: number } }>({ op: 'stats', v: PROTOCOL_VERSION })
      .then((r) => r.stats, (err: Error) => { throw olderShim('stats', err.message); });
  }

  /** Resolves when the container exits. */
  wait(): Promise<ExitStatus> {
    return this.exchange<ExitStatus>({ op: 'wait' }, (type, payload, done) => {
      if (type === FRAME.EXIT) done(JSON.parse(payload.toString('utf8')) as ExitStatus);
    }, 'the shim hung up before the container exited');
  }

  /**
   * Live output (and stdin, if the shim has a stdin pipe and no other client holds it) until the
   * container exits. Output from before the attach is only in the log. close() detaches (rejects).
   */
  async attach(opts: AttachOptions): Promise<ExitStatus> {
    const sock = await this.conn();
    this.attachSock = sock;
    const { stdin, stdout, stderr } = opts;
    let unpipe = () => {};
    try {
      return await new Promise<ExitStatus>((resolve, reject) => {
        let settled = false;
        const reader = new FrameReader();
        const write = (to: NodeJS.WritableStream | undefined, payload: Buffer) => {
          if (!to) return;
          // the terminal or file is slower than the container: hold the socket (and so the shim)
          if (!to.write(payload)) { sock.pause(); to.once('drain', () => sock.resume()); }
        };
        sock.on('data', (chunk: Buffer) => {
          let frames;
          try { frames = reader.push(chunk); } catch (err) { settled = true; reject(err); sock.destroy(); return; }
          for (const f of frames) {
            if (!('type' in f)) continue;
            switch (f.type) {
              case FRAME.STDOUT: write(stdout, f.payload); break;
              case FRAME.STDERR: write(stderr, f.payload); break;
              case FRAME.REPLY: {
                const v = JSON.parse(f.payload.toString('utf8')) as { error?: string; stdin?: boolean; tty?: boolean };
                if (v.error) { settled = true; reject(new PierError(v.error)); sock.destroy(); return; }
                if (v.stdin && stdin) unpipe = pumpStdin(stdin, sock);
                opts.onAttached?.({ stdin: !!v.stdin, tty: !!v.tty });
                break;
              }
              case FRAME.EXIT:
                settled = true;
                resolve(JSON.parse(f.payload.toString('utf8')) as ExitStatus);
                break;
            }
          }
        });
        sock.on('close', () => { if (!settled) reject(new PierError('detached: the attach connection closed before the container exited')); });
        sock.write(JSON.stringify({ op: 'attach', stdin: !!stdin, stdout: !!stdout, stderr: !!stderr }) + '\n');
      });
    } finally {
      unpipe();
      if (this.attachSock === sock) this.attachSock = undefined;
    }
  }

  /** Terminal size (tty containers). Goes over the attach connection when there is one. */
  resize(cols: number, rows: number): void {
    const s = this.attachSock;
    if (s && !s.destroyed) {
      s.write(jsonFrame(FRAME.RESIZE, { cols, rows }));
      return;
    }
    this.reply({ op: 'resize', cols, rows }).catch(() => undefined);
  }

  /** resize that reports failure (no terminal, not running). */
  resizeChecked(cols: number, rows: number): Promise<void> {
    return this.reply({ op: 'resize', cols, rows }).then(() => undefined);
  }

  /** Signal the container's init through the shim. */
  kill(signal: string | number = 'SIGTERM'): Promise<void> {
    return this.reply({ op: 'kill', signal }).then(() => undefined);
  }

  /** Start a container made with deferStart; resolves once it runs (attach first to see all output). */
  start(): Promise<StartResult> {
    return this.reply<StartResult & { ok: true }>({ op: 'start' }).then(({ shimPid, initPid }) => ({ shimPid, initPid }));
  }

  status(): Promise<ShimStatus> {
    return this.reply<ShimStatus>({ op: 'status' });
  }

  close(): void {
    for (const s of this.open) s.destroy();
    this.open.clear();
    this.first = undefined;
  }
}

/** Copy a readable into STDIN frames; its end becomes STDIN_EOF. Returns the undo. */
export function pumpStdin(stdin: NodeJS.ReadableStream, sock: Socket): () => void {
  const onData = (d: Buffer | string) => {
    const buf = typeof d === 'string' ? Buffer.from(d) : d;
    if (!sock.write(encodeFrame(FRAME.STDIN, buf))) {
      stdin.pause();
      sock.once('drain', () => stdin.resume());
    }
  };
  const onEnd = () => { if (!sock.destroyed) sock.write(encodeFrame(FRAME.STDIN_EOF)); };
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  stdin.resume();
  return () => {
    stdin.removeListener('data', onData);
    stdin.removeListener('end', onEnd);
    stdin.pause();
  };
}
