/**
 * Exec instances and attach, through the containers' shims (protocol v2, shim/README.md): docker's
 * two-step exec — create an instance (POST /containers/:ref/exec), start it detached or on a
 * hijacked connection (POST /exec/:id/start), resize its terminal, inspect it — and attach to a
 * running container's stdio (POST /containers/:ref/attach).
 *
 * Written against narrow inputs (how a container is found, how its shim is reached, how a user
 * name is resolved) so it does not reach into the Engine. Instances live in memory only: at most
 * MAX_EXECS, a finished one is forgotten FINISHED_TTL_MS after its exit, one never started after
 * UNSTARTED_TTL_MS, and all of a container's go when it is removed. A running exec keeps pierd's
 * connection to the shim open, so its exit code is known even when the client hung up; a pierd
 * restart loses the instances (the processes run on under the shim).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { PierError, messageOf } from '../../common/errors.ts';
import { FRAME, FrameReader, encodeFrame, jsonFrame, type ExecExit, type ExecSpec, type ShimClient, type ShimStream } from '../shim/index.ts';
import type { ContainerInfo, ExecCreateRequest, ExecInspect, ExecStartRequest } from '../api.ts';
import { ApiError, conflict, notFound } from './errors.ts';
import { accept, relay, refuse, type Relay } from './hijack.ts';

export const MAX_EXECS = 1024;
export const FINISHED_TTL_MS = 5 * 60_000;
export const UNSTARTED_TTL_MS = 15 * 60_000;

export interface ExecDeps {
  /** The container a reference names; throws (an ApiError 404) when there is none. */
  container(ref: string): ContainerInfo;
  /** A client of the container's shim (rejects when it is gone). */
  shim(info: ContainerInfo): Promise<ShimClient>;
  /** USER[:GROUP] in the container's rootfs → ids (image/bundle.ts resolveUser). */
  resolveUser(rootfs: string, user: string): { uid: number; gid: number; additionalGids?: number[] };
  now?: () => number;
}

interface Instance {
  id: string;
  containerId: string;
  req: ExecCreateRequest;
  createdAt: number;
  started: boolean;
  running: boolean;
  exitCode: number | null;
  error?: string;
  pid: number;
  finishedAt?: number;
  relay?: Relay;
  /** the shim connection of a started exec (resize goes through it) */
  stream?: ShimStream<{ pid: number; tty: boolean }>;
}

/** The one-line refusal for a container that cannot take an exec or an attach. */
function notRunning(info: ContainerInfo, what: string): ApiError {
  if (info.state.status === 'paused') return conflict(`container ${info.name} is paused: unpause it first`);
  return conflict(`cannot ${what} container ${info.name}: it is not running (${info.state.status})`);
}

export class ExecService {
  private readonly deps: ExecDeps;
  private readonly byId = new Map<string, Instance>();
  private readonly now: () => number;

  constructor(deps: ExecDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
  }

  /** Forget what has expired (called on each use, so no timer keeps pierd busy). */
  private sweep(): void {
    const now = this.now();
    for (const [id, x] of this.byId) {
      if (x.finishedAt !== undefined && now - x.finishedAt > FINISHED_TTL_MS) this.byId.delete(id);
      else if (!x.started && now - x.createdAt > UNSTARTED_TTL_MS) this.byId.delete(id);
    }
  }

  private get(id: string): Instance {
    this.sweep();
    const x = this.byId.get(id);
    if (!x) throw notFound(`no such exec instance: ${id.slice(0, 64)}`);
    return x;
  }

  create(ref: string, req: ExecCreateRequest): { Id: string } {
    this.sweep();
    const info = this.deps.container(ref);
    if (info.state.status !== 'running') throw notRunning(info, 'exec in');
    if (this.byId.size >= MAX_EXECS) {
      // the oldest finished one makes room; running and unstarted ones are someone's
      const old = [...this.byId.values()].filter((x) => x.finishedAt !== undefined).sort((a, b) => a.finishedAt! - b.finishedAt!)[0];
      if (!old) throw new ApiError(503, `pierd holds ${MAX_EXECS} exec instances already: start or let some finish first`);
      this.byId.delete(old.id);
    }
    const id = randomBytes(32).toString('hex');
    this.byId.set(id, { id, containerId: info.id, req, createdAt: this.now(), started: false, running: false, exitCode: null, pid: 0 });
    return { Id: id };
  }

  /** The shim request for an instance (user names resolved in the container's rootfs now, as docker does at start). */
  private spec(x: Instance, info: ContainerInfo, start: ExecStartRequest, detach: boolean): ExecSpec {
    const r = x.req;
    const tty = start.Tty ?? r.Tty ?? false;
    const spec: ExecSpec = { args: r.Cmd, terminal: tty, stdin: !detach && !!r.AttachStdin, detach };
    if (r.Env?.length) spec.env = r.Env;
    if (r.WorkingDir) spec.cwd = r.WorkingDir;
    // the running container's own tree (its rootfs may be mounted only in its mount namespace)
    if (r.User) spec.user = this.deps.resolveUser(info.state.pid ? `/proc/${info.state.pid}/root` : info.rootfs, r.User);
    if (tty && start.ConsoleSize) spec.consoleSize = { rows: start.ConsoleSize[0], cols: start.ConsoleSize[1] };
    return spec;
  }

  /** Checks shared by both starts; marks the instance started. */
  private async open(id: string, start: ExecStartRequest, detach: boolean): Promise<Instance> {
    const x = this.get(id);
    if (x.started) throw conflict(`exec ${id.slice(0, 12)} has already been started`);
    const info = this.deps.container(x.containerId);
    if (info.state.status !== 'running') throw notRunning(info, 'exec in');
    const spec = this.spec(x, info, start, detach);
    x.started = true;
    try {
      const shim = await this.deps.shim(info);
      x.stream = await shim.openExec(spec);
    } catch (err) {
      x.started = false;
      if (err instanceof ApiError) throw err;
      // the shim is gone: the container stopped meanwhile
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') throw conflict(`cannot exec in container ${info.name}: it is not running`);
      throw new ApiError(/older pier/.test(messageOf(err)) ? 501 : 409, messageOf(err));
    }
    x.running = true;
    x.pid = x.stream.reply.pid;
    return x;
  }

  private exited(x: Instance, payload: Buffer): void {
    try {
      const e = JSON.parse(payload.toString('utf8')) as ExecExit;
      // -1: the process ended but its status is not known (a detached exec through runc)
      x.exitCode = typeof e.exitCode === 'number' ? (e.exitCode < 0 ? null : e.exitCode) : 1;
      if (e.error) x.error = e.error;
    } catch {
      x.exitCode = 1;
    }
    x.running = false;
    x.finishedAt = this.now();
  }

  /** The shim hung up without an EXIT (the container ended under it). */
  private lost(x: Instance): void {
    if (x.finishedAt !== undefined) return;
    x.running = false;
    x.exitCode ??= 137;
    x.error ??= 'the container stopped before the exec\'d process reported its exit';
    x.finishedAt = this.now();
  }

  /** Start detached: the process gets /dev/null; pierd keeps the shim connection for its exit code. */
  async startDetached(id: string, start: ExecStartRequest): Promise<void> {
    const x = await this.open(id, start, true);
    const { sock, rest } = x.stream!;
    const reader = new FrameReader();
    const onData = (chunk: Buffer) => {
      let frames;
      try { frames = reader.push(chunk); } catch { sock.destroy(); return; }
      for (const f of frames) if ('type' in f && f.type === FRAME.EXIT) this.exited(x, f.payload);
    };
    sock.on('data', onData);
    sock.on('error', () => undefined);
    sock.once('close', () => this.lost(x));
    if (rest.length) onData(rest);
    sock.resume();
  }

  /** Start on a hijacked connection: 101, then the process's frames until its EXIT. */
  async startAttached(id: string, start: ExecStartRequest, client: Socket, clientRest: Buffer): Promise<void> {
    const x = await this.open(id, start, false);
    const { sock, rest } = x.stream!;
    accept(client);
    x.relay = relay({
      client, clientRest, shim: sock, shimRest: rest,
      onShimFrame: (type, payload) => { if (type === FRAME.EXIT) this.exited(x, payload); },
      // the process runs on without the client; its stdin reaches EOF so a reader of it can end
      onClientGone: () => { if (!sock.destroyed) sock.write(encodeFrame(FRAME.STDIN_EOF)); },
    });
    sock.once('close', () => this.lost(x));
  }

  async resize(id: string, rows: number, cols: number): Promise<void> {
    const x = this.get(id);
    if (!x.running || !x.stream) throw conflict(`exec ${id.slice(0, 12)} is not running`);
    if (!(x.req.Tty ?? false) && !x.stream.reply.tty) throw new ApiError(400, `exec ${id.slice(0, 12)} has no terminal`);
    const frame = jsonFrame(FRAME.RESIZE, { cols, rows });
    if (x.relay) x.relay.toShim(frame);
    else x.stream.sock.write(frame);
  }

  inspect(id: string): ExecInspect {
    const x = this.get(id);
    const [entrypoint, ...args] = x.req.Cmd;
    return {
      ID: x.id,
      ContainerID: x.containerId,
      Running: x.running,
      ExitCode: x.exitCode,
      Pid: x.pid,
      OpenStdin: !!x.req.AttachStdin,
      OpenStdout: x.req.AttachStdout ?? true,
      OpenStderr: x.req.AttachStderr ?? true,
      CanRemove: false,
      ProcessConfig: { tty: !!x.req.Tty, entrypoint, arguments: args, privileged: false, user: x.req.User ?? '' },
      ...(x.error ? { Error: x.error } : {}),
    };
  }

  /** The container was removed: its instances go (a running one's stream ends with its shim). */
  dropContainer(containerId: string): void {
    for (const [id, x] of this.byId) if (x.containerId === containerId) this.byId.delete(id);
  }

  /** How many instances are held (tests, bounds). */
  get size(): number {
    return this.byId.size;
  }

  /**
   * Attach to a running container on a hijacked connection: its output from now on, its stdin
   * when asked (and the shim has a stdin pipe no other client holds), resizes in-band, and the
   * container's exit as the last frame. The client hanging up detaches.
   */
  async attach(ref: string, want: { stdin: boolean; stdout: boolean; stderr: boolean }, client: Socket, clientRest: Buffer): Promise<void> {
    const info = this.deps.container(ref);
    if (info.state.status !== 'running') throw notRunning(info, 'attach to');
    let stream: ShimStream<{ stdin: boolean; tty: boolean }>;
    try {
      const shim = await this.deps.shim(info);
      stream = await shim.openStream<{ stdin: boolean; tty: boolean }>({ op: 'attach', ...want });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') throw conflict(`cannot attach to container ${info.name}: it is not running`);
      throw new ApiError(409, messageOf(err));
    }
    accept(client);
    const { sock, rest } = stream;
    relay({ client, clientRest, shim: sock, shimRest: rest, onClientGone: () => sock.destroy() });
  }
}

/** Run a hijack handler, turning what it throws before the 101 into an HTTP answer. */
export async function hijacked(client: Socket, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const status = err instanceof ApiError || (err as { status?: number }).status ? (err as { status: number }).status : err instanceof PierError ? 400 : 500;
    refuse(client, status, messageOf(err));
  }
}
