/**
 * The engine API client the CLI uses: JSON requests and NDJSON streams over pierd's unix socket.
 * When nothing answers on the socket it starts pierd (`pier daemon`, detached) and waits for it,
 * as the docker-style CLI promises: the daemon is started by the CLI when absent.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { rawRequest, type RawResponse } from './http.ts';
import { childProcess } from '../../common/lazy.ts';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { PierError, errnoOf, messageOf } from '../../common/errors.ts';
import type { StreamLine } from '../api.ts';
import type { BuildSandboxInfo } from '../daemon/build-sandbox.ts';
import { enginePaths, type EnginePaths } from '../paths.ts';

export const API_PREFIX = '/v1';

export interface ClientOptions {
  paths?: EnginePaths;
  /** Start pierd when absent (default true). */
  autoStart?: boolean;
  /** argv to start the daemon with (default: this CLI's `daemon`). */
  daemonCommand?: string[];
}

/** A build's network sandbox as pierd lent it (see buildSandbox), and how to give it back. */
export interface BuildSandboxLease extends BuildSandboxInfo {
  /** why the sandbox is gone before release(), or undefined while it is usable */
  lost(): string | undefined;
  release(): Promise<void>;
}

export interface RequestOptions { signal?: AbortSignal }

/** pierd answered an error: its message, and the HTTP status (404: what was named does not exist). */
export class EngineApiError extends PierError {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

export class EngineClient {
  readonly paths: EnginePaths;
  private autoStart: boolean;
  private daemonCommand: string[];
  private started = false;

  constructor(opts: ClientOptions = {}) {
    this.paths = opts.paths ?? enginePaths();
    this.autoStart = opts.autoStart ?? true;
    this.daemonCommand = opts.daemonCommand ?? [process.execPath, ...process.execArgv.filter((a) => !a.startsWith('--inspect')), process.argv[1], 'daemon'];
  }

  /** node:http, for request bodies of unknown length (archives); loaded only for those. */
  private async httpStream(method: string, path: string, body?: NodeJS.ReadableStream, headers: Record<string, string> = {}): Promise<IncomingMessage> {
    const { request } = await import('node:http');
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.paths.socket, method, path: `${API_PREFIX}${path}`, headers }, resolve);
      req.on('error', reject);
      if (body) body.pipe(req);
      else req.end();
    });
  }

  /** Send (starting the daemon once if the socket has nobody behind it). */
  private async send(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<RawResponse> {
    const data = body === undefined ? undefined : JSON.stringify(body);
    return this.retrying(() => rawRequest(this.paths.socket, method, `${API_PREFIX}${path}`, data, signal));
  }

  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = errnoOf(err);
      if (!this.autoStart || this.started || (code !== 'ENOENT' && code !== 'ECONNREFUSED')) throw unreachable(this.paths.socket, err);
      await this.startDaemon();
      return fn();
    }
  }

  /** One request and its JSON answer; `signal` abandons it (AbortError) wherever it is. */
  async json<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, body, opts.signal);
    const text = await readAll(res.body);
    const value = text ? (JSON.parse(text) as unknown) : undefined;
    if ((res.statusCode ?? 500) >= 400) {
      const msg = (value as { message?: string } | undefined)?.message ?? `pierd answered ${res.statusCode}`;
      throw new EngineApiError(msg, res.statusCode);
    }
    return value as T;
  }

  /** An NDJSON stream; errors before the stream starts are thrown; `signal` ends it (AbortError). */
  async *stream(method: string, path: string, body?: unknown, opts: RequestOptions = {}): AsyncGenerator<StreamLine> {
    const res = await this.send(method, path, body, opts.signal);
    if (res.statusCode >= 400) {
      const text = await readAll(res.body);
      let msg = `pierd answered ${res.statusCode}`;
      try { msg = (JSON.parse(text) as { message: string }).message; } catch { /* not JSON */ }
      throw new PierError(msg);
    }
    let buf = '';
    res.body.setEncoding('utf8');
    for await (const chunk of res.body) {
      buf += chunk as string;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line) yield JSON.parse(line) as StreamLine;
      }
    }
  }

  /**
   * A hijacked stream (exec start, attach): the request is upgraded and the returned socket carries
   * the shim protocol's frames (STDOUT/STDERR/EXIT in, STDIN/STDIN_EOF/RESIZE out). An answer
   * other than 101 is thrown as an EngineApiError with pierd's message.
   */
  async hijack(method: string, path: string, body?: unknown): Promise<{ socket: import('node:net').Socket }> {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const res = await this.retrying(() => rawRequest(this.paths.socket, method, `${API_PREFIX}${path}`, data, undefined, { upgrade: true }));
    if (res.statusCode !== 101) {
      const text = await readAll(res.body);
      let msg = `pierd answered ${res.statusCode} instead of upgrading the connection`;
      try { msg = (JSON.parse(text) as { message: string }).message; } catch { /* not JSON */ }
      throw new EngineApiError(msg, res.statusCode);
    }
    return { socket: res.body };
  }

  /** A raw byte stream (archives). */
  async bytes(method: string, path: string, body?: NodeJS.ReadableStream): Promise<IncomingMessage> {
    const res = await this.retrying(() => this.httpStream(method, path, body, body ? { 'content-type': 'application/x-tar', 'transfer-encoding': 'chunked' } : {}));
    if ((res.statusCode ?? 500) >= 400) {
      const text = await readAll(res);
      let msg = `pierd answered ${res.statusCode}`;
      try { msg = (JSON.parse(text) as { message: string }).message; } catch { /* not JSON */ }
      throw new PierError(msg);
    }
    return res;
  }

  /**
   * A network sandbox for a build's RUN steps, on the default network (POST /build/sandboxes). It
   * lives as long as the connection that asked for it: release() has pierd tear it down and waits
   * for that; if this process dies first, the closed connection has pierd tear it down.
   */
  async buildSandbox(hostname: string): Promise<BuildSandboxLease> {
    const res = await this.send('POST', `/build/sandboxes?hostname=${encodeURIComponent(hostname)}`);
    const sock = res.body;
    if (res.statusCode >= 400) {
      const text = await readAll(sock);
      let msg = `pierd answered ${res.statusCode}`;
      try { msg = (JSON.parse(text) as { message: string }).message; } catch { /* not JSON */ }
      throw new EngineApiError(msg, res.statusCode);
    }
    const first = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const done = () => { sock.off('data', onData); sock.off('end', onEnd); sock.off('error', onError); };
      const onData = (c: Buffer) => {
        buf += c.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl >= 0) { done(); resolve(buf.slice(0, nl)); }
      };
      const onEnd = () => { done(); reject(new PierError('pierd ended the build sandbox answer before describing the sandbox')); };
      const onError = (err: Error) => { done(); reject(unreachable(this.paths.socket, err)); };
      sock.on('data', onData);
      sock.once('end', onEnd);
      sock.once('error', onError);
      sock.resume();
    });
    const info = (JSON.parse(first) as { sandbox?: BuildSandboxInfo }).sandbox;
    if (!info) { sock.destroy(); throw new PierError('pierd sent no build sandbox'); }
    let released = false;
    let lost: string | undefined;
    const gone = () => { if (!released) lost ??= 'pierd ended it (did pierd stop?)'; };
    sock.on('data', () => {});   // keep reading: the end of the answer is the news
    sock.once('end', gone);
    sock.once('close', gone);
    sock.on('error', gone);
    return {
      ...info,
      lost: () => lost,
      release: async () => {
        if (released) return;
        released = true;
        try {
          if (lost) return;   // pierd went away with it: asking again would only start a new pierd
          const r = await rawRequest(this.paths.socket, 'DELETE', `${API_PREFIX}/build/sandboxes/${info.id}`);
          const text = await readAll(r.body);
          if (r.statusCode >= 400) {
            let msg = `pierd answered ${r.statusCode}`;
            try { msg = (JSON.parse(text) as { message: string }).message; } catch { /* not JSON */ }
            throw new EngineApiError(msg, r.statusCode);
          }
        } finally {
          sock.destroy();
        }
      },
    };
  }

  async ping(): Promise<boolean> {
    try {
      const res = await rawRequest(this.paths.socket, 'GET', `${API_PREFIX}/_ping`);
      await readAll(res.body);
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  private async startDaemon(): Promise<void> {
    this.started = true;
    mkdirSync(this.paths.run, { recursive: true, mode: 0o700 });
    const log = openSync(this.paths.daemonLog, 'a');
    try {
      const [cmd, ...args] = this.daemonCommand;
      const child = childProcess().spawn(cmd, args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, PIER_ROOT: this.paths.root, PIER_RUN: this.paths.run } });
      child.unref();
    } finally {
      closeSync(log);
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (await this.ping()) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new PierError(`pierd did not start within 10 s (see ${this.paths.daemonLog})`);
  }
}

function unreachable(socket: string, err: unknown): PierError {
  return new PierError(`cannot reach pierd at ${socket}: ${messageOf(err)}`);
}

async function readAll(res: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
