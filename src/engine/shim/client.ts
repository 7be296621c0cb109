/** pierd's side of the shim socket (protocol in README.md), and the exit file reader. */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { PierError } from '../../common/errors.ts';
import { FRAME, FrameReader, encodeFrame, jsonFrame } from './protocol.ts';
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
function pumpStdin(stdin: NodeJS.ReadableStream, sock: Socket): () => void {
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
