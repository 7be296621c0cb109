/**
 * What the engine's container logic asks of the host, as narrow interfaces: images and their root
 * filesystems, network sandboxes, container monitors (shims), the runtime of a running container,
 * /proc, and time. engine.ts wires the real ones; test/helpers/engine-fakes.ts has fakes, so the
 * lifecycle — restarts, --rm, port conflicts, takeover, racing stop/kill/rm — is unit-tested
 * without root (containerd's and kwok's way: host effects behind an interface with a fake).
 */
import { readFileSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errnoOf } from '../../common/errors.ts';
import type { Clock } from '../../common/clock.ts';
import type { ResolvedImage } from '../../image/index.ts';
import type { RootfsMount } from '../api.ts';
import type { PortMapping, Sandbox, SandboxRequest } from '../network/index.ts';
import { ShimClient, readExit, type ExitStatus, type ShimConfig } from '../shim/index.ts';
import type { RuntimeDriver } from './runtime.ts';
import type { ShimPool } from './shim-pool.ts';

export interface ImagePort {
  resolve(ref: string): Promise<ResolvedImage>;
  prepareRootfs(image: ResolvedImage, key: string, opts: { nosuid?: boolean }): Promise<{ rootfs: string }>;
  /** Nothing mounted: the mounts that make the tree, for the runtime to make in the container. */
  prepareRootfsMounts(image: ResolvedImage, key: string): Promise<{ rootfs: string; mounts: RootfsMount[] }>;
  /** A short-lived host view of a rootfs prepared as mounts (the container is not running). */
  mountView(key: string): { path: string; release(): void };
  /** No error when it is already gone. */
  removeRootfs(key: string): Promise<void>;
  rootfsUsage(): { key: string; size: number }[];
  list(): Promise<{ size?: number }[]>;
  /** Make a local image (pods' pause image). */
  bootstrap(kind: 'pause', opts: { binary?: string }): Promise<unknown>;
}

export interface CgroupPort {
  /** Remove an (empty) cgroup dir at this path in every hierarchy; none there is no error. */
  removeParent(path: string): void;
}

export interface NetworkPort {
  inspect(ref: string): { id: string; name: string; dns: boolean };
  /** Refuses host ports another sandbox holds. */
  checkPorts(ports: PortMapping[]): void;
  setup(req: SandboxRequest): Promise<Sandbox>;
  /** No error when there is nothing to tear down. */
  teardown(containerId: string): Promise<void>;
  ensureDefault(): unknown;
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** How a run of a container ended, as its monitor tells it. */
export type WaitResult =
  | { kind: 'exit'; status: ExitStatus }
  /** the monitor is gone and left no exit record */
  | { kind: 'lost' }
  /** the monitor lives but did not answer: ask again shortly */
  | { kind: 'retry' };

export interface ShimPort {
  start(cfg: ShimConfig): Promise<{ shimPid: number; initPid: number }>;
  /** Follow a running container's monitor until its run ends. */
  wait(target: { socket: string; exitFile: string; shimPid: number }): Promise<WaitResult>;
  /** The exit record a monitor left (a daemon that restarts finds it). */
  exitOf(exitFile: string): ExitStatus | undefined;
  alive(pid: number): boolean;
  /** Start monitor hosts ahead of the first container. */
  fill(): void;
  /** Drop every connection (daemon stop; the monitors keep running). */
  close(): void;
}

export interface ProcPort {
  /** `ps`-like rows [uid, pid, ppid, time, cmd] of these pids (gone ones left out). */
  top(pids: number[]): string[][];
  /** Non-loopback byte counters of the network namespace pid is in. */
  netCounters(pid: number): { netRx: number; netTx: number };
  /** Bytes under a directory. */
  du(dir: string): number;
}

export interface EngineHost {
  images: ImagePort;
  networks: NetworkPort;
  shims: ShimPort;
  /** The runtime that runs this container (pier's library or a runc-compatible binary). */
  driver(rec: { runtimePath?: string; config: { runtime?: string }; runtimeRoot: string }): RuntimeDriver;
  proc: ProcPort;
  cgroups: CgroupPort;
  clock: Clock;
  /** pier-init's binary, for --init (undefined: not built). */
  initBinary(): string | undefined;
}

// ---- the real ones --------------------------------------------------------------------------------

export function pidAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}

/** Shims through the daemon's pool of shim hosts and their sockets. */
export class RealShims implements ShimPort {
  private readonly pool: ShimPool;
  private readonly clients = new Set<ShimClient>();
  constructor(pool: ShimPool) {
    this.pool = pool;
  }
  start(cfg: ShimConfig) {
    return this.pool.start(cfg);
  }
  async wait(t: { socket: string; exitFile: string; shimPid: number }): Promise<WaitResult> {
    let client: ShimClient | undefined;
    try {
      client = await ShimClient.connect(t.socket);
      this.clients.add(client);
      return { kind: 'exit', status: await client.wait() };
    } catch {
      const status = readExit(t.exitFile);
      if (status) return { kind: 'exit', status };
      return pidAlive(t.shimPid) ? { kind: 'retry' } : { kind: 'lost' };
    } finally {
      if (client) { this.clients.delete(client); client.close(); }
    }
  }
  exitOf(exitFile: string) {
    return readExit(exitFile);
  }
  alive(pid: number) {
    return pidAlive(pid);
  }
  fill() {
    this.pool.fill();
  }
  close() {
    this.pool.close();
    for (const c of this.clients) c.close();
    this.clients.clear();
  }
}

export const realProc: ProcPort = {
  top(pids) {
    const hz = 100;
    return pids.flatMap((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1] ?? '?';
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') || `[${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}]`;
        const cpu = (Number(fields[11]) + Number(fields[12])) / hz;
        const time = `${String(Math.floor(cpu / 3600)).padStart(2, '0')}:${String(Math.floor(cpu / 60) % 60).padStart(2, '0')}:${String(Math.floor(cpu) % 60).padStart(2, '0')}`;
        return [[uid, String(pid), fields[1], time, cmd]];
      } catch { return []; }
    });
  },
  netCounters(pid) {
    try {
      const lines = readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').slice(2);
      let rx = 0, tx = 0;
      for (const l of lines) {
        const [name, rest] = l.split(':');
        if (!rest || name.trim() === 'lo') continue;
        const f = rest.trim().split(/\s+/).map(Number);
        rx += f[0];
        tx += f[8];
      }
      return { netRx: rx, netTx: tx };
    } catch { return { netRx: 0, netTx: 0 }; }
  },
  du(dir) {
    return duBytes(dir);
  },
};

function duBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    let ents;
    try { ents = readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else { try { total += statSync(p).size; } catch { /* raced */ } }
    }
  };
  walk(dir);
  return total;
}

/**
 * cgroup dirs in every hierarchy mounted under /sys/fs/cgroup (hybrid here: one per v1 controller,
 * plus the v2 tree). Only an empty one can be removed: a pod's parent goes after its containers'.
 */
export const realCgroups: CgroupPort = {
  removeParent(path) {
    const rel = path.replace(/^\/+/, '');
    if (!rel || rel.split('/').includes('..')) throw new Error(`bad cgroup path ${JSON.stringify(path)}`);
    const roots = new Set<string>(['/sys/fs/cgroup']);
    let ents: string[] = [];
    try { ents = readdirSync('/sys/fs/cgroup'); } catch { return; }
    for (const e of ents) roots.add(join('/sys/fs/cgroup', e));
    for (const r of roots) {
      try { rmdirSync(join(r, rel)); } catch (err) {
        const code = errnoOf(err);
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      }
    }
  },
};
