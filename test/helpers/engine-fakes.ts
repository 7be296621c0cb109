/**
 * Fakes of the host behind the engine's interfaces (src/engine/daemon/host.ts): images whose
 * rootfs is an empty dir, network sandboxes that only book ports, and container processes that
 * live in a table — they run until a signal or the test ends them, and their shims can vanish.
 * With a FakeClock the engine's whole lifecycle (restart backoff, --rm, stop timeouts, takeover
 * after a daemon restart, racing stop/kill/rm) runs without root, in milliseconds.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '../../src/common/log.ts';
import { PierError } from '../../src/common/errors.ts';
import type { ResolvedImage } from '../../src/image/index.ts';
import type { PortMapping, Sandbox, SandboxRequest } from '../../src/engine/network/index.ts';
import type { ExitStatus, ShimConfig } from '../../src/engine/shim/index.ts';
import type { EngineHost, ImagePort, NetworkPort, ProcPort, ShimPort, WaitResult } from '../../src/engine/daemon/host.ts';
import type { ContainerStats, RuntimeDriver } from '../../src/engine/daemon/runtime.ts';
import { Engine } from '../../src/engine/daemon/engine.ts';
import { enginePaths } from '../../src/engine/paths.ts';
import { FakeClock } from './fake-clock.ts';

export class FakeImages implements ImagePort {
  readonly root: string;
  readonly rootfs = new Set<string>();
  constructor(root: string) {
    this.root = root;
  }
  pause = false;
  async bootstrap(kind: 'pause') {
    if (kind === 'pause') this.pause = true;
  }
  async resolve(ref: string): Promise<ResolvedImage> {
    if (ref === 'pier-pause:latest' && this.pause) {
      return { ref, configDigest: `sha256:${'p'.repeat(64)}`, config: { architecture: 'amd64', os: 'linux', config: { Entrypoint: ['/pause', '--pause'] }, rootfs: { type: 'layers', diff_ids: [] } } } as unknown as ResolvedImage;
    }
    if (ref !== 'busybox' && ref !== 'busybox:latest') throw new PierError(`image ${ref} not found`);
    return {
      ref: 'busybox:latest',
      configDigest: `sha256:${'b'.repeat(64)}`,
      config: { architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [] } },
    } as unknown as ResolvedImage;
  }
  async prepareRootfs(_image: ResolvedImage, key: string): Promise<{ rootfs: string }> {
    const dir = join(this.root, 'rootfs', key);
    mkdirSync(dir, { recursive: true });
    this.rootfs.add(key);
    return { rootfs: dir };
  }
  async prepareRootfsMounts(_image: ResolvedImage, key: string) {
    const dir = join(this.root, 'rootfs', key);
    mkdirSync(join(dir, 'lower'), { recursive: true });
    mkdirSync(join(dir, 'rootfs'), { recursive: true });
    this.rootfs.add(key);
    return { rootfs: join(dir, 'rootfs'), mounts: [{ type: 'bind' as const, source: join(dir, 'lower'), options: ['rbind'] }] };
  }
  mountView(key: string) {
    return { path: join(this.root, 'rootfs', key, 'lower'), release() {} };
  }
  async removeRootfs(key: string): Promise<void> {
    rmSync(join(this.root, 'rootfs', key), { recursive: true, force: true });
    this.rootfs.delete(key);
  }
  rootfsUsage() { return [...this.rootfs].map((key) => ({ key, size: 0 })); }
  async list() { return []; }
}

export class FakeNetworks implements NetworkPort {
  /** Sandboxes set up and not torn down, by container id, with the ports they hold. */
  readonly sandboxes = new Map<string, PortMapping[]>();
  private nextIp = 2;
  inspect(ref: string) {
    if (ref !== 'bridge') throw new PierError(`network ${ref} not found`);
    return { id: 'n'.repeat(64), name: 'bridge', dns: false };
  }
  checkPorts(ports: PortMapping[], except?: string): void {
    for (const [id, held] of this.sandboxes) {
      if (id === except) continue;
      for (const p of ports) {
        if (held.some((q) => q.hostPort === p.hostPort && q.protocol === p.protocol)) throw new PierError(`port ${p.hostPort}/${p.protocol} is already in use`);
      }
    }
  }
  async setup(req: SandboxRequest): Promise<Sandbox> {
    this.checkPorts(req.ports, req.containerId);
    const ports = req.ports.map((p) => (p.hostPort === 0 ? { ...p, hostPort: 30000 + this.nextIp } : p));
    this.sandboxes.set(req.containerId, ports);
    const ip = `10.99.0.${this.nextIp++}`;
    return {
      containerId: req.containerId,
      mode: req.mode,
      ...(req.mode === 'host' ? {} : { netnsPath: `/fake/netns/${req.containerId}` }),
      attachments: req.mode === 'bridge' ? [{ network: 'bridge', networkId: 'n'.repeat(64), ifname: 'eth0', ip, prefixLength: 24, gateway: '10.99.0.1', mac: '02:00:00:00:00:01', aliases: [] }] : [],
      ports,
      hosts: '127.0.0.1\tlocalhost\n',
      resolvConf: 'nameserver 10.99.0.1\n',
    };
  }
  async teardown(containerId: string): Promise<void> {
    this.sandboxes.delete(containerId);
  }
  ensureDefault() { return undefined; }
  async restore() {}
  async close() {}
}

interface Proc {
  id: string;
  shimPid: number;
  initPid: number;
  socket: string;
  exitFile: string;
  startedAt: string;
  paused: boolean;
  /** the shim is gone (crash): waits see a lost monitor */
  lost: boolean;
  exit?: ExitStatus;
  waiters: ((r: WaitResult) => void)[];
}

/**
 * Container processes and their shims, shared by the shim port and the runtime driver. `ignore`
 * lists signals a container shrugs off (a process that traps SIGTERM); `onStart` may end a run
 * by itself (a crashing command).
 */
export class FakeProcesses implements ShimPort {
  readonly clock: FakeClock;
  private nextPid = 1000;
  readonly byId = new Map<string, Proc>();
  readonly exitFiles = new Map<string, ExitStatus>();
  ignore = new Set<string>();
  onStart?: (id: string, p: FakeProcesses) => void;
  starts = 0;
  constructor(clock: FakeClock) {
    this.clock = clock;
  }
  async start(cfg: ShimConfig) {
    const shimPid = this.nextPid++;
    const initPid = this.nextPid++;
    const p: Proc = { id: cfg.id, shimPid, initPid, socket: cfg.socket, exitFile: cfg.exitFile, startedAt: new Date(this.clock.now()).toISOString(), paused: false, lost: false, waiters: [] };
    this.byId.set(cfg.id, p);
    this.exitFiles.delete(cfg.exitFile);
    this.starts++;
    this.onStart?.(cfg.id, this);
    return { shimPid, initPid };
  }
  running(id: string): boolean {
    const p = this.byId.get(id);
    return Boolean(p && !p.exit && !p.lost);
  }
  /** The container's process ends with this code (as the shim reports it). */
  exit(id: string, exitCode: number): void {
    const p = this.byId.get(id);
    if (!p || p.exit || p.lost) return;
    p.exit = { exitCode, oomKilled: false, startedAt: p.startedAt, finishedAt: new Date(this.clock.now()).toISOString() };
    this.exitFiles.set(p.exitFile, p.exit);
    for (const w of p.waiters.splice(0)) w({ kind: 'exit', status: p.exit });
  }
  /** The shim dies with its container and leaves no exit record. */
  crash(id: string): void {
    const p = this.byId.get(id);
    if (!p || p.exit) return;
    p.lost = true;
    for (const w of p.waiters.splice(0)) w({ kind: 'lost' });
  }
  async wait(t: { socket: string; exitFile: string; shimPid: number }): Promise<WaitResult> {
    const p = [...this.byId.values()].find((x) => x.socket === t.socket && x.shimPid === t.shimPid);
    if (!p || p.lost) {
      const e = this.exitFiles.get(t.exitFile);
      return e ? { kind: 'exit', status: e } : { kind: 'lost' };
    }
    if (p.exit) return { kind: 'exit', status: p.exit };
    return new Promise((resolve) => p.waiters.push(resolve));
  }
  exitOf(exitFile: string) { return this.exitFiles.get(exitFile); }
  alive(pid: number) {
    return [...this.byId.values()].some((p) => p.shimPid === pid && !p.exit && !p.lost);
  }
  fill() {}
  close() {
    // a daemon that stops leaves its containers running: only its waits end (never resolved)
    for (const p of this.byId.values()) p.waiters.splice(0);
  }

  driver(): RuntimeDriver {
    const procs = this;
    const live = (id: string) => {
      const p = procs.byId.get(id);
      if (!p || p.exit || p.lost) throw new PierError(`container ${id} is not running`);
      return p;
    };
    return {
      async kill(id, signal) {
        const p = live(id);
        const sig = /^\d+$/.test(signal) ? Number(signal) : constants.signals[signal as keyof typeof constants.signals];
        if (sig === undefined) throw new PierError(`unknown signal ${signal}`);
        const name = Object.entries(constants.signals).find(([, n]) => n === sig)?.[0] ?? signal;
        // a frozen process takes no signal until thawed (SIGKILL included, cgroup v1 freezer)
        if (p.paused || procs.ignore.has(name)) return;
        procs.exit(id, 128 + sig);
      },
      async pause(id) { live(id).paused = true; },
      async resume(id) { live(id).paused = false; },
      async pids(id) { return [live(id).initPid]; },
      async stats(id): Promise<ContainerStats> { live(id); return { cpuNanos: 0, memoryUsage: 1 << 20, memoryLimit: 0, pids: 1 }; },
      async forceDelete() {},
    };
  }
}

export const fakeProc: ProcPort = { top: (pids) => pids.map((p) => ['0', String(p), '1', '00:00:00', 'sh']), netCounters: () => ({ netRx: 0, netTx: 0 }), du: () => 0 };

export interface FakeEngine {
  engine: Engine;
  clock: FakeClock;
  procs: FakeProcesses;
  images: FakeImages;
  networks: FakeNetworks;
  root: string;
  /** A second daemon on the same state and the same processes (a pierd that restarted). */
  restart(): Promise<FakeEngine>;
  close(): Promise<void>;
}

/** An engine on fakes, in a temporary state dir (no root needed). */
export async function fakeEngine(opts: { root?: string; clock?: FakeClock; procs?: FakeProcesses; networks?: FakeNetworks; images?: FakeImages } = {}): Promise<FakeEngine> {
  const root = opts.root ?? mkdtempSync(join(tmpdir(), 'pier-fake-engine-'));
  const clock = opts.clock ?? new FakeClock();
  const procs = opts.procs ?? new FakeProcesses(clock);
  const images = opts.images ?? new FakeImages(root);
  const networks = opts.networks ?? new FakeNetworks();
  const driver = procs.driver();
  const cgroups = { removed: [] as string[], removeParent(path: string) { this.removed.push(path); } };
  const host: EngineHost = { images, networks, shims: procs, driver: () => driver, proc: fakeProc, cgroups, clock, initBinary: () => '/fake/pier-init' };
  const paths = enginePaths({ root: join(root, 'state'), run: join(root, 'run') });
  const engine = new Engine({ paths, log: new Logger({ file: join(root, 'engine.log') }), host, config: { trace: false, shimHosts: 0 } });
  await engine.init();
  const fe: FakeEngine = {
    engine, clock, procs, images, networks, root,
    async restart() {
      await engine.close();
      return fakeEngine({ root, clock, procs, networks, images });
    },
    async close() {
      await engine.close();
    },
  };
  return fe;
}
