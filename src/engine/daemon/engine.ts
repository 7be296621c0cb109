/**
 * Engine: the daemon's model of containers. Create prepares everything that lasts (record, rootfs
 * overlay, volumes); start makes what lasts one run (network sandbox, bundle) and hands the
 * container to a shim; the shim's exit report drives teardown, restart policies and --rm.
 * Every change to one container runs under that container's lock, in order.
 */
import { closeSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { PierError, errnoOf, messageOf } from '../../common/errors.ts';
import { writeFileAtomic } from '../../common/atomic.ts';
import type { Logger } from '../../common/log.ts';
import { ImageService, applyLayer, archivePath, type ImageConfig } from '../../image/index.ts';
import { Scope, procFd } from '../../common/rooted.ts';
import { NetworkManager, type Sandbox } from '../network/index.ts';
import { VolumeManager } from '../volume/index.ts';
import { ShimClient, readExit, readLogs, type ExitStatus, type ShimConfig } from '../shim/index.ts';
import { ShimPool } from './shim-pool.ts';
import type { ContainerInfo, CreateRequest, ExitInfo, LogEntry, MountRecord, StatsInfo, StreamLine, VolumeInfo } from '../api.ts';
import { makeStateDirs, type EnginePaths } from '../paths.ts';
import { ContainerRecords, newId, validateName } from './store.ts';
import { ApiError, conflict } from './errors.ts';
import { buildSpec, capabilities } from './spec.ts';
import { checkMountDestination, parseVolumeSpec } from './mounts.ts';
import { BinaryDriver, LibraryDriver, Runtimes, runtimeBinaryOf, type RuntimeDriver } from './runtime.ts';
import { parseSignal } from '../../runtime/signals.ts';
import { nextBackoff, restartOnDaemonStart, shouldRestart } from './restart.ts';
import { findInitBinary } from './init.ts';

/** PIER_TRACE=1: the daemon logs how long each step of create/start/exit took (for bench work). */
const TRACE = process.env.PIER_TRACE === '1';
function stamp(): () => number {
  const t = process.hrtime.bigint();
  return () => Number(process.hrtime.bigint() - t) / 1e6;
}

const DEFAULT_LOG = { maxSize: 10 * 1024 * 1024, maxFiles: 3 };
const DEFAULT_STOP_TIMEOUT = 10;

interface Live {
  client?: ShimClient;
  restartTimer?: NodeJS.Timeout;
  backoffMs: number;
  /** Called with the next exit; with undefined when the container is removed without one. */
  waiters: ((e: ExitInfo | undefined) => void)[];
  /** Streams still reading this run's log: --rm waits for them before deleting it. */
  readers: Set<Promise<void>>;
  /**
   * Aborted when the container is removed: every log follower and attached stream of it ends
   * then, and closes its fds to the log (an exit file it may wait for goes with the record).
   */
  gone: AbortController;
}

export interface EngineOptions {
  paths: EnginePaths;
  log: Logger;
  images?: ImageService;
  networks?: NetworkManager;
  /** Override how shims are started (tests, pools). */
  shimScript?: string;
  /** The runtimes containers may name (the daemon reads them from daemon.json at start); default: pier's own only. */
  runtimes?: Runtimes;
}

export class Engine extends EventEmitter {
  readonly paths: EnginePaths;
  readonly log: Logger;
  readonly images: ImageService;
  readonly networks: NetworkManager;
  readonly volumes: VolumeManager;
  readonly records: ContainerRecords;
  readonly runtimes: Runtimes;
  private live = new Map<string, Live>();
  private locks = new Map<string, Promise<unknown>>();
  private closed = false;
  private drivers = new Map<string, RuntimeDriver>();
  private pool: ShimPool;

  constructor(opts: EngineOptions) {
    super();
    this.paths = opts.paths;
    this.log = opts.log;
    this.images = opts.images ?? new ImageService({ root: opts.paths.root });
    // PIER_BRIDGE / PIER_BRIDGE_SUBNET move the default network (tests run a second engine beside a real one).
    this.networks = opts.networks ?? new NetworkManager({
      root: opts.paths.root, run: opts.paths.run, log: (m: string) => this.log.info(m),
      ...(process.env.PIER_BRIDGE ? { defaultBridge: process.env.PIER_BRIDGE } : {}),
      ...(process.env.PIER_BRIDGE_SUBNET ? { defaultSubnet: process.env.PIER_BRIDGE_SUBNET } : {}),
    });
    this.volumes = new VolumeManager(opts.paths.volumes);
    this.records = new ContainerRecords(opts.paths.containers);
    makeStateDirs(opts.paths);
    this.runtimes = opts.runtimes ?? new Runtimes();
    this.pool = new ShimPool(opts.paths.shims, opts.log);
  }

  /** Daemon start: read records, bring networks back, and take every container over again. */
  async init(): Promise<void> {
    // Shim hosts of a previous daemon keep their own sockets open while they have containers.
    this.networks.ensureDefault();
    await this.networks.restore();
    const recs = this.records.load();
    await Promise.all(recs.map((rec) => this.locked(rec.id, () => this.reconcile(rec))));
    this.pool.fill();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pool.close();
    for (const l of this.live.values()) {
      if (l.restartTimer) clearTimeout(l.restartTimer);
      l.client?.close();
    }
    await this.networks.close();
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.locks.set(id, settled);
    void settled.then(() => { if (this.locks.get(id) === settled) this.locks.delete(id); });
    return next;
  }

  // ---- hook (events branch): a turn of one container's lock, for daemon/health.ts's setHealth ----
  withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.locked(id, fn);
  }
  // ---- end hook ----

  private liveOf(id: string): Live {
    let l = this.live.get(id);
    if (!l) this.live.set(id, (l = { backoffMs: 0, waiters: [], readers: new Set(), gone: new AbortController() }));
    return l;
  }

  private driver(rec: ContainerInfo): RuntimeDriver {
    const key = runtimeBinaryOf(rec) ?? '';
    let d = this.drivers.get(key);
    if (!d) this.drivers.set(key, (d = key ? new BinaryDriver(key, rec.runtimeRoot) : new LibraryDriver(rec.runtimeRoot)));
    return d;
  }

  /**
   * The runtime a container is to start with, looked up in this daemon's table every start: a name
   * (or, in a record of an older pier, the path of a configured runtime, which is recorded by name
   * from now on). A runtime no longer configured is refused with the names that are.
   */
  private startRuntime(rec: ContainerInfo): string | undefined {
    const rt = this.runtimes.find(rec.config.runtime);
    if (!rt) throw new PierError(`container ${rec.name}: runtime ${JSON.stringify(rec.config.runtime)} is not configured (known: ${this.runtimes.names().join(', ')}; configure it in daemon.json under "runtimes")`);
    if (rt.path) { rec.config.runtime = rt.name; rec.runtimePath = rt.path; } else { delete rec.config.runtime; delete rec.runtimePath; }
    return rt.path;
  }

  private dir(id: string): string {
    return this.records.dirOf(id);
  }

  private save(rec: ContainerInfo): void {
    this.records.save(rec);
  }

  get(ref: string): ContainerInfo {
    return this.records.get(ref);
  }

  list(all = false): ContainerInfo[] {
    return this.records.all().filter((c) => all || c.state.status === 'running' || c.state.status === 'paused' || c.state.status === 'restarting');
  }

  // ---- create ----------------------------------------------------------------------------------

  async create(req: CreateRequest): Promise<ContainerInfo> {
    if (!req.image) throw new PierError('no image given');
    const name = req.name ? validateName(req.name.replace(/^\//, '')) : this.records.generateName();
    const taken = this.records.nameTaken(name);
    if (taken) throw conflict(`container name "${name}" is already in use by container ${taken.id.slice(0, 12)}: remove it or pick another name`);
    const image = await this.images.resolve(req.image).catch((err) => {
      throw new ApiError(404, `${messageOf(err)} (pull or build it first)`);
    });
    // Decide everything that can fail before anything is made.
    const mode = req.network === 'none' || req.network === 'host' ? req.network : 'bridge';
    const netName = mode === 'bridge' ? (req.network && req.network !== 'default' ? req.network : 'bridge') : mode;
    if (mode === 'bridge') this.networks.inspect(netName);
    if (mode !== 'bridge' && req.ports?.length) throw new PierError(`published ports need a bridge network, not --network ${mode}`);
    if (mode !== 'bridge' && req.networkAliases?.length) throw new PierError(`network aliases need a user network, not --network ${mode}`);
    if (req.ports?.length) {
      this.checkPortsAgainstContainers(req.ports);
      this.networks.checkPorts(req.ports);
    }
    const vspecs = (req.volumes ?? []).map(parseVolumeSpec);
    const dests = new Set<string>();
    for (const v of vspecs) {
      if (dests.has(v.destination)) throw new PierError(`duplicate mount point ${v.destination}`);
      dests.add(v.destination);
      if (v.kind === 'bind') {
        let st;
        try { st = statSync(v.source!); } catch { throw new PierError(`bind source path does not exist: ${v.source}`); }
        if (!st.isDirectory() && !st.isFile()) throw new PierError(`bind source path is not a file or directory: ${v.source}`);
      }
    }
    const rt = this.runtimes.get(req.runtime);
    if (rt.path && !existsSync(rt.path)) throw new PierError(`runtime ${rt.name}: its binary ${rt.path} is not there`);
    if (rt.path && req.tty) throw new PierError(`runtime ${rt.name}: a terminal (-t) needs pier's own runtime: runc hands the pty out only over a console socket`);
    checkCreateValues(req);
    if (req.init && !findInitBinary()) throw new PierError('--init: pier-init is not built (run scripts/setup)');
    if (req.restart?.name && req.autoRemove && req.restart.name !== 'no') throw new PierError('--restart and --rm cannot be used together');

    const id = newId();
    const dir = this.dir(id);
    const made: { rootfs?: string; volumes: string[] } = { volumes: [] };
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const key = `ctr-${id}`;
      const t = stamp();
      // A runtime binary (runc) binds the rootfs with the host mount's flags: a nosuid host mount would
      // take set-id from its containers, so theirs has none and only the 0700 parents guard it.
      const prepared = await this.images.prepareRootfs(image, key, { nosuid: !req.runtime });
      if (TRACE) this.log.info(`trace ${id.slice(0, 12)} rootfs ${t().toFixed(1)} ms`);
      made.rootfs = key;
      writeFileAtomic(join(dir, 'image-config.json'), JSON.stringify(image.config));
      // A hostile image may ship /data -> /proc: the runtime would mount over the container's procfs
      // (the CVE-2019-19921 class). Refuse by where the destination leads in the image, too.
      if (vspecs.length) {
        const scope = Scope.open(prepared.rootfs);
        try {
          for (const v of vspecs) {
            const resolved = scope.realPath(v.destination);
            if (resolved !== v.destination) checkMountDestination(resolved, `${v.destination} (a symlink in the image to ${resolved})`);
          }
        } finally {
          scope.close();
        }
      }
      const mounts: MountRecord[] = [];
      for (const v of vspecs) {
        if (v.kind === 'bind') {
          mounts.push({ type: 'bind', source: v.source!, destination: v.destination, readOnly: v.readOnly });
          continue;
        }
        const existed = v.kind === 'named' && this.volumes.tryInspect(v.source!) !== undefined;
        const vol = this.volumes.create(v.kind === 'named' ? v.source : undefined);
        if (!existed) {
          made.volumes.push(vol.name);
          await copyUp(prepared.rootfs, v.destination, vol.mountpoint);
        }
        mounts.push({ type: 'volume', source: vol.name, destination: v.destination, readOnly: v.readOnly, ...(v.kind === 'anonymous' ? { anonymous: true } : {}) });
      }
      const c = image.config.config ?? {};
      const rec: ContainerInfo = {
        id,
        name,
        created: new Date().toISOString(),
        image: image.ref,
        imageId: image.configDigest,
        command: [...(req.entrypoint ?? c.Entrypoint ?? []), ...(req.cmd?.length ? req.cmd : req.entrypoint ? [] : c.Cmd ?? [])].filter((a) => a !== ''),
        config: recordConfig(req, name, rt.path ? rt.name : undefined),
        ...(rt.path ? { runtimePath: rt.path } : {}),
        state: { status: 'created', pid: 0, shimPid: 0, oomKilled: false, restartCount: 0, manuallyStopped: false },
        mounts,
        network: { mode, networks: mode === 'bridge' ? [netName] : [], ips: {}, ports: req.ports ?? [] },
        rootfs: prepared.rootfs,
        logPath: join(dir, 'container.log'),
        // Short: unix socket paths are limited to 107 bytes and PIER_RUN may be deep.
        shimSocket: join(this.paths.shims, `${id.slice(0, 24)}.sock`),
        runtimeRoot: this.paths.runtimeRoot,
      };
      if (rec.command.length === 0) throw new PierError('no command: the image has no Entrypoint or Cmd, give one');
      this.save(rec);
      this.emit('event', { type: 'create', id, name });
      return rec;
    } catch (err) {
      if (made.rootfs) await this.images.removeRootfs(made.rootfs).catch(() => undefined);
      for (const v of made.volumes) { try { this.volumes.remove(v); } catch { /* best effort */ } }
      this.records.delete(id);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private checkPortsAgainstContainers(ports: { hostPort: number; protocol: string; hostIp?: string }[], except?: string): void {
    for (const c of this.records.all()) {
      if (c.id === except) continue;
      if (c.state.status !== 'running' && c.state.status !== 'paused' && c.state.status !== 'restarting' && c.state.status !== 'created') continue;
      for (const p of ports) {
        if (p.hostPort === 0) continue;
        for (const q of c.network.ports) {
          if (p.hostPort === q.hostPort && p.protocol === q.protocol) {
            throw conflict(`port ${p.hostPort}/${p.protocol} is already allocated (container ${c.name})`);
          }
        }
      }
    }
  }

  // ---- start -----------------------------------------------------------------------------------

  start(ref: string): Promise<ContainerInfo> {
    const id = this.get(ref).id;
    return this.locked(id, async () => {
      const rec = this.get(id);
      if (rec.state.status === 'running' || rec.state.status === 'paused') return rec;
      if (rec.state.status === 'removing') throw conflict(`container ${rec.name} is being removed`);
      const l = this.liveOf(id);
      if (l.restartTimer) { clearTimeout(l.restartTimer); l.restartTimer = undefined; }
      rec.state.manuallyStopped = false;
      await this.startLocked(rec);
      return rec;
    });
  }

  private async startLocked(rec: ContainerInfo): Promise<void> {
    const id = rec.id;
    const dir = this.dir(id);
    let sandbox: Sandbox | undefined;
    try {
      const runtimePath = this.startRuntime(rec);
      const wanted = rec.config.ports ?? [];
      if (wanted.length) {
        this.checkPortsAgainstContainers(wanted, id);
        this.networks.checkPorts(wanted);
      }
      const hostname = rec.config.hostname ?? id.slice(0, 12);
      const t = stamp();
      sandbox = await this.networks.setup({
        containerId: id,
        name: rec.name,
        hostname,
        mode: rec.network.mode,
        networks: rec.network.networks.map((n) => ({ name: n, aliases: rec.config.networkAliases ?? [] })),
        ports: wanted,
        ...(rec.config.extraHosts ? { extraHosts: rec.config.extraHosts } : {}),
      });
      if (TRACE) this.log.info(`trace ${id.slice(0, 12)} network setup ${t().toFixed(1)} ms`);
      writeFileSync(join(dir, 'hosts.base'), sandbox.hosts);
      writeFileSync(join(dir, 'hosts'), sandbox.hosts);
      writeFileSync(join(dir, 'resolv.conf'), sandbox.resolvConf);
      writeFileSync(join(dir, 'hostname'), `${hostname}\n`);
      const imageConfig = JSON.parse(readFileSync(join(dir, 'image-config.json'), 'utf8')) as ImageConfig;
      const mountSources = rec.mounts.map((m) => (m.type === 'bind' ? m.source : this.volumes.inspect(m.source).mountpoint));
      const initBinary = rec.config.init ? findInitBinary() : undefined;
      const spec = buildSpec({ rec, imageConfig, dir, ...(sandbox.netnsPath ? { netnsPath: sandbox.netnsPath } : {}), mountSources, ...(initBinary ? { initBinary } : {}) });
      const bundle = join(dir, 'bundle');
      mkdirSync(bundle, { recursive: true, mode: 0o700 });
      writeFileAtomic(join(bundle, 'config.json'), JSON.stringify(spec));
      const exitFile = join(dir, 'exit.json');
      rmSync(exitFile, { force: true });
      const cfg: ShimConfig = {
        id,
        bundle,
        runtimeRoot: rec.runtimeRoot,
        ...(runtimePath ? { runtime: runtimePath } : {}),
        log: { path: rec.logPath, maxSize: rec.config.log?.maxSize ?? DEFAULT_LOG.maxSize, maxFiles: rec.config.log?.maxFiles ?? DEFAULT_LOG.maxFiles },
        socket: rec.shimSocket,
        exitFile,
        stdin: rec.config.stdin ?? false,
        tty: rec.config.tty ?? false,
      };
      const t2 = stamp();
      const { shimPid, initPid } = await this.pool.start(cfg);
      if (TRACE) this.log.info(`trace ${id.slice(0, 12)} shim start ${t2().toFixed(1)} ms (setup to running ${t().toFixed(1)} ms)`);
      rec.state = { ...rec.state, status: 'running', pid: initPid, shimPid, startedAt: new Date().toISOString(), error: undefined, oomKilled: false, exitCode: undefined, finishedAt: undefined };
      rec.network.ips = Object.fromEntries(sandbox.attachments.map((a) => [a.network, a.ip]));
      // What was published: a host port of 0 is one the network layer picked.
      rec.network.ports = sandbox.ports;
      this.save(rec);
    } catch (err) {
      if (sandbox || rec.network.mode !== 'host') await this.networks.teardown(id).catch((e) => this.log.warn(`teardown ${id}: ${messageOf(e)}`));
      rec.state.error = messageOf(err);
      this.save(rec);
      throw err;
    }
    this.emit('event', { type: 'start', id, name: rec.name });
    this.refreshHosts(rec.network.networks);
    this.watch(rec);
  }

  /**
   * Names on user networks also go into every member's /etc/hosts (rewritten in place, so the bind
   * mount sees it): statically linked programs such as busybox's resolve through files only, not
   * through the network's DNS server.
   */
  private refreshHosts(networks: string[]): void {
    for (const net of networks) {
      let dns = false;
      try { dns = this.networks.inspect(net).dns; } catch { continue; }
      if (!dns) continue;
      const members = this.records.all().filter((c) => (c.state.status === 'running' || c.state.status === 'paused') && c.network.ips[net]);
      const lines = members.map((c) => `${c.network.ips[net]}\t${[c.name, c.id.slice(0, 12), ...(c.config.networkAliases ?? [])].join(' ')}`);
      for (const c of members) {
        const dir = this.dir(c.id);
        try {
          const base = readFileSync(join(dir, 'hosts.base'), 'utf8');
          writeFileSync(join(dir, 'hosts'), `${base}${base.endsWith('\n') ? '' : '\n'}# containers on network ${net}\n${lines.join('\n')}\n`);
        } catch (err) {
          this.log.warn(`hosts of ${c.name}: ${messageOf(err)}`);
        }
      }
    }
  }

  /** Follow a running container's shim until it reports the exit. */
  private watch(rec: ContainerInfo): void {
    const id = rec.id;
    const l = this.liveOf(id);
    void (async () => {
      let status: ExitStatus | undefined;
      try {
        const client = await ShimClient.connect(rec.shimSocket);
        l.client = client;
        status = await client.wait();
      } catch {
        status = readExit(join(this.dir(id), 'exit.json'));
        if (!status && pidAlive(rec.state.shimPid)) {
          // The shim lives but its socket did not answer: try again shortly.
          if (!this.closed) setTimeout(() => this.watch(rec), 200);
          return;
        }
      } finally {
        l.client = undefined;
      }
      if (this.closed) return;
      await this.locked(id, () => this.exited(id, status));
    })().catch((err) => this.log.error(`watching ${id}: ${messageOf(err)}`));
  }

  /** The container's run ended (status undefined: its shim vanished without a report). */
  private async exited(id: string, status: ExitStatus | undefined): Promise<void> {
    const rec = this.records.find(id);
    if (!rec || (rec.state.status !== 'running' && rec.state.status !== 'paused')) return;
    if (!status) {
      await this.driver(rec).forceDelete(id).catch(() => undefined);
      status = { exitCode: 255, oomKilled: false, startedAt: rec.state.startedAt ?? '', finishedAt: new Date().toISOString(), error: 'the container monitor (shim) was lost' };
    }
    const t = stamp();
    await this.networks.teardown(id).catch((err) => this.log.warn(`network teardown of ${id}: ${messageOf(err)}`));
    if (TRACE) this.log.info(`trace ${id.slice(0, 12)} network teardown ${t().toFixed(1)} ms`);
    const ran = Date.parse(status.finishedAt) - Date.parse(rec.state.startedAt ?? status.finishedAt);
    rec.state = {
      ...rec.state,
      status: 'exited',
      pid: 0,
      shimPid: 0,
      exitCode: status.exitCode,
      oomKilled: status.oomKilled,
      finishedAt: status.finishedAt,
      ...(status.error ? { error: status.error } : {}),
    };
    rec.network.ips = {};
    rec.network.ports = rec.config.ports ?? [];
    this.save(rec);
    this.refreshHosts(rec.network.networks);
    const info: ExitInfo = { exitCode: status.exitCode, oomKilled: status.oomKilled, ...(status.signal ? { signal: status.signal } : {}), ...(status.error ? { error: status.error } : {}) };
    this.emit('event', { type: 'die', id, name: rec.name, exitCode: status.exitCode });
    const l = this.liveOf(id);
    const waiters = l.waiters.splice(0);
    if (rec.config.autoRemove) {
      // Let attached clients read the last lines before the log goes with the container.
      if (l.readers.size) await Promise.race([Promise.all(l.readers), new Promise((r) => setTimeout(r, 5000))]);
      const t3 = stamp();
      await this.removeLocked(rec, { volumes: true });
      if (TRACE) this.log.info(`trace ${id.slice(0, 12)} remove ${t3().toFixed(1)} ms`);
    } else if (shouldRestart(rec.config.restart, rec.state, status.exitCode)) {
      l.backoffMs = nextBackoff(l.backoffMs, Number.isFinite(ran) ? ran : 0);
      rec.state.status = 'restarting';
      this.save(rec);
      l.restartTimer = setTimeout(() => {
        l.restartTimer = undefined;
        void this.locked(id, async () => {
          const cur = this.records.find(id);
          if (!cur || cur.state.status !== 'restarting') return;
          // A stop that came after the timer fired but before this turn of the lock wins.
          if (cur.state.manuallyStopped) { cur.state.status = 'exited'; this.save(cur); return; }
          cur.state.restartCount++;
          try {
            await this.startLocked(cur);
          } catch (err) {
            this.log.error(`restart of ${cur.name}: ${messageOf(err)}`);
            cur.state.status = 'exited';
            this.save(cur);
          }
        });
      }, l.backoffMs);
    }
    for (const w of waiters) w(info);
  }

  /** After a daemon restart: match the record with what is really there. */
  private async reconcile(rec: ContainerInfo): Promise<void> {
    const st = rec.state.status;
    if (st === 'running' || st === 'paused') {
      const exit = readExit(join(this.dir(rec.id), 'exit.json'));
      if (exit || !pidAlive(rec.state.shimPid)) {
        await this.exited(rec.id, exit);
        return;
      }
      this.watch(rec);
      return;
    }
    if (st === 'removing') {
      await this.removeLocked(rec, { volumes: true });
      return;
    }
    if (st === 'restarting') {
      rec.state.status = 'exited';
      this.save(rec);
    }
    if (rec.state.status === 'exited' && restartOnDaemonStart(rec.config.restart, rec.state)) {
      try { await this.startLocked(rec); } catch (err) { this.log.error(`restart of ${rec.name} at daemon start: ${messageOf(err)}`); }
    }
  }

  /**
   * Start a container and yield its output of this run, then its exit (`pier run`, `start -a`).
   * The waiter is registered before the start, so even an instant exit is seen.
   */
  async *runAttached(ref: string, signal: AbortSignal): AsyncGenerator<StreamLine> {
    const rec = this.get(ref);
    const l = this.liveOf(rec.id);
    let onExit!: (e: ExitInfo | undefined) => void;
    const exit = new Promise<ExitInfo | undefined>((r) => { onExit = r; });
    l.waiters.push(onExit);
    let done!: () => void;
    const reader = new Promise<void>((r) => { done = r; });
    l.readers.add(reader);
    try {
      const since = new Date();
      try {
        await this.start(rec.id);
      } catch (err) {
        l.waiters = l.waiters.filter((w) => w !== onExit);
        throw err;
      }
      yield { progress: 'started' };
      // removal ends the follower too (what the log holds by then is still read): the exit file
      // it would wait for goes with the record
      for await (const entry of readLogs(rec.logPath, { follow: true, since, signal, stop: l.gone.signal, exitFile: join(this.dir(rec.id), 'exit.json') })) {
        yield { entry };
      }
    } finally {
      l.readers.delete(reader);
      done();
    }
    if (signal.aborted) return;
    // removal settles the waiter too: with the exit if it came first, else without one
    const e = await exit;
    yield e ? { exit: e } : { error: `container ${rec.name} was removed` };
  }

  // ---- stop / kill / pause ---------------------------------------------------------------------

  /** Resolves with the exit of the current run (immediately if not running). */
  wait(ref: string): Promise<ExitInfo> {
    const rec = this.get(ref);
    const st = rec.state.status;
    if (st !== 'running' && st !== 'paused' && st !== 'restarting') {
      return Promise.resolve({ exitCode: rec.state.exitCode ?? 0, oomKilled: rec.state.oomKilled, ...(rec.state.error ? { error: rec.state.error } : {}) });
    }
    return new Promise((resolve, reject) => this.liveOf(rec.id).waiters.push((e) => (e ? resolve(e) : reject(new ApiError(404, `container ${rec.name} was removed`)))));
  }

  /** Resolves at the next exit (or the removal), or right away when not running. */
  private nextExit(rec: ContainerInfo): Promise<ExitInfo> {
    const now = (): ExitInfo => ({ exitCode: rec.state.exitCode ?? 0, oomKilled: rec.state.oomKilled });
    if (rec.state.status !== 'running' && rec.state.status !== 'paused') return Promise.resolve(now());
    return new Promise((resolve) => this.liveOf(rec.id).waiters.push((e) => resolve(e ?? now())));
  }

  async stop(ref: string, timeoutSec?: number): Promise<ContainerInfo> {
    const rec = this.get(ref);
    const l = this.liveOf(rec.id);
    rec.state.manuallyStopped = true;
    if (l.restartTimer) { clearTimeout(l.restartTimer); l.restartTimer = undefined; }
    if (rec.state.status === 'restarting') {
      // The timer may have fired already, its start queued on the lock or under way: wait for that
      // turn to settle, so what follows sees either a stopped record or a running one to stop.
      await this.locked(rec.id, async () => { if (rec.state.status === 'restarting') { rec.state.status = 'exited'; this.save(rec); } });
    }
    if (rec.state.status !== 'running' && rec.state.status !== 'paused') {
      this.save(rec);
      return rec;
    }
    this.save(rec);
    const exit = this.nextExit(rec);
    const drv = this.driver(rec);
    if (rec.state.status === 'paused') await drv.resume(rec.id).catch(() => undefined);
    const sig = rec.config.stopSignal ?? stopSignalOf(this.dir(rec.id)) ?? 'SIGTERM';
    await drv.kill(rec.id, sig).catch(() => undefined);
    const timeout = (timeoutSec ?? rec.config.stopTimeout ?? DEFAULT_STOP_TIMEOUT) * 1000;
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeout).unref());
    if ((await Promise.race([exit, timer])) === 'timeout') {
      await drv.kill(rec.id, 'SIGKILL').catch(() => undefined);
      await exit;
    }
    return this.get(rec.id);
  }

  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const rec = this.get(ref);
    if (rec.state.status !== 'running' && rec.state.status !== 'paused') throw conflict(`container ${rec.name} is not running`);
    const sig = signal.toUpperCase().startsWith('SIG') || /^\d+$/.test(signal) ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
    if (sig === 'SIGKILL' || sig === '9') {
      rec.state.manuallyStopped = true;
      this.save(rec);
    }
    await this.driver(rec).kill(rec.id, sig);
  }

  async restart(ref: string, timeoutSec?: number): Promise<ContainerInfo> {
    await this.stop(ref, timeoutSec);
    return this.start(ref);
  }

  pause(ref: string): Promise<void> {
    return this.freeze(ref, 'running', 'paused');
  }

  unpause(ref: string): Promise<void> {
    return this.freeze(ref, 'paused', 'running');
  }

  /** pause (running → paused) or unpause (paused → running) through the runtime's freezer. */
  private freeze(ref: string, from: 'running' | 'paused', to: 'running' | 'paused'): Promise<void> {
    const id = this.get(ref).id;
    return this.locked(id, async () => {
      const rec = this.get(id);
      if (rec.state.status !== from) throw conflict(`container ${rec.name} is not ${from}`);
      await (to === 'paused' ? this.driver(rec).pause(id) : this.driver(rec).resume(id));
      rec.state.status = to;
      this.save(rec);
    });
  }

  // ---- remove ----------------------------------------------------------------------------------

  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const id = this.get(ref).id;
    // Each turn of the lock either removes a container that is not running or, with force, marks a
    // running one (no --rm, no restart) and kills it outside the lock, whose exit needs the lock.
    // A start queued before the removal (`run` racing `rm -f`) makes a created container running
    // between the two: then the next turn finds it running and kills it first.
    for (;;) {
      const running = await this.locked(id, async () => {
        const cur = this.records.find(id);
        if (!cur) return undefined;
        const st = cur.state.status;
        if (st !== 'running' && st !== 'paused' && st !== 'restarting') {
          await this.removeLocked(cur, opts);
          return undefined;
        }
        if (!opts.force) throw conflict(`container ${cur.name} is ${st}: stop it first or use --force`);
        const l = this.liveOf(id);
        if (l.restartTimer) { clearTimeout(l.restartTimer); l.restartTimer = undefined; }
        cur.config.autoRemove = false;
        cur.state.manuallyStopped = true;
        // restarting: nothing runs, and the timer's start (queued or not) sees the stop and stays put
        if (st === 'restarting') cur.state.status = 'exited';
        this.save(cur);
        return st === 'restarting' ? { rec: cur, exit: Promise.resolve() } : { rec: cur, exit: this.nextExit(cur).then(() => undefined) };
      });
      if (!running) return;
      const drv = this.driver(running.rec);
      // a frozen container takes the SIGKILL only once thawed (cgroup v1 freezer)
      if (running.rec.state.status === 'paused') await drv.resume(id).catch(() => undefined);
      await drv.kill(id, 'SIGKILL').catch(() => undefined);
      await running.exit;
    }
  }

  private async removeLocked(rec: ContainerInfo, opts: { volumes?: boolean }): Promise<void> {
    rec.state.status = 'removing';
    this.save(rec);
    await this.networks.teardown(rec.id).catch(() => undefined);
    await this.images.removeRootfs(`ctr-${rec.id}`);
    if (opts.volumes) {
      for (const m of rec.mounts) {
        if (m.type === 'volume' && m.anonymous) {
          try { this.volumes.remove(m.source, this.volumeUsers(m.source, rec.id)); } catch (err) { this.log.warn(`volume ${m.source}: ${messageOf(err)}`); }
        }
      }
    }
    rmSync(rec.shimSocket, { force: true });
    this.records.delete(rec.id);
    const l = this.live.get(rec.id);
    this.live.delete(rec.id);
    if (l) {
      if (l.restartTimer) clearTimeout(l.restartTimer);
      // followers and attached streams end now; waiters that got no exit learn of the removal
      l.gone.abort();
      for (const w of l.waiters.splice(0)) w(undefined);
    }
    this.emit('event', { type: 'destroy', id: rec.id, name: rec.name });
  }

  volumeUsers(name: string, except?: string): string[] {
    return this.records.all().filter((c) => c.id !== except && c.mounts.some((m) => m.type === 'volume' && m.source === name)).map((c) => c.name);
  }

  // ---- observe ---------------------------------------------------------------------------------

  logs(ref: string, opts: { follow?: boolean; tail?: number; since?: Date; until?: Date; signal?: AbortSignal }): AsyncIterable<LogEntry> {
    const rec = this.get(ref);
    const running = rec.state.status === 'running' || rec.state.status === 'paused' || rec.state.status === 'restarting';
    const follow = Boolean(opts.follow && running);
    // a follower ends when the container is removed, as at its exit (the exit file goes with it)
    return readLogs(rec.logPath, { ...opts, follow, ...(follow ? { stop: this.liveOf(rec.id).gone.signal } : {}), exitFile: join(this.dir(rec.id), 'exit.json') });
  }

  async top(ref: string): Promise<{ titles: string[]; processes: string[][] }> {
    const rec = this.get(ref);
    if (rec.state.status !== 'running' && rec.state.status !== 'paused') throw conflict(`container ${rec.name} is not running`);
    const pids = await this.driver(rec).pids(rec.id);
    const hz = 100;
    const rows = pids.flatMap((pid) => {
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
    return { titles: ['UID', 'PID', 'PPID', 'TIME', 'CMD'], processes: rows };
  }

  async stats(ref: string): Promise<StatsInfo> {
    const rec = this.get(ref);
    const base: StatsInfo = { id: rec.id, name: rec.name, cpuPercent: 0, cpuNanos: 0, memoryUsage: 0, memoryLimit: 0, pids: 0, netRx: 0, netTx: 0 };
    if (rec.state.status !== 'running' && rec.state.status !== 'paused') return base;
    const drv = this.driver(rec);
    const a = await drv.stats(rec.id);
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, 200));
    const b = await drv.stats(rec.id).catch(() => a);
    const wall = Number(process.hrtime.bigint() - t0);
    const net = netCounters(rec.state.pid);
    return { ...base, cpuNanos: b.cpuNanos, cpuPercent: wall > 0 ? ((b.cpuNanos - a.cpuNanos) / wall) * 100 : 0, memoryUsage: b.memoryUsage, memoryLimit: b.memoryLimit, pids: b.pids, ...net };
  }

  // ---- volumes, system -------------------------------------------------------------------------

  removeVolume(name: string): void {
    this.volumes.remove(name, this.volumeUsers(name));
  }

  pruneVolumes(): string[] {
    const removed: string[] = [];
    for (const v of this.volumes.list()) {
      if (this.volumeUsers(v.name).length === 0) {
        this.volumes.remove(v.name);
        removed.push(v.name);
      }
    }
    return removed;
  }

  async pruneContainers(): Promise<string[]> {
    const out: string[] = [];
    for (const c of this.records.all()) {
      if (c.state.status === 'exited' || c.state.status === 'created' || c.state.status === 'dead') {
        await this.remove(c.id, { volumes: true });
        out.push(c.id);
      }
    }
    return out;
  }

  async df(): Promise<{ images: { count: number; size: number }; containers: { count: number; running: number; size: number }; volumes: { count: number; size: number }; }> {
    const imgs = await this.images.list();
    const usage = this.images.rootfsUsage();
    const byKey = new Map(usage.map((u) => [u.key, u.size]));
    const containers = this.records.all();
    const vols: VolumeInfo[] = this.volumes.list();
    return {
      images: { count: imgs.length, size: imgs.reduce((a, i) => a + (i.size ?? 0), 0) },
      containers: {
        count: containers.length,
        running: containers.filter((c) => c.state.status === 'running').length,
        size: containers.reduce((a, c) => a + (byKey.get(`ctr-${c.id}`) ?? 0), 0),
      },
      volumes: { count: vols.length, size: vols.reduce((a, v) => a + duBytes(v.mountpoint), 0) },
    };
  }

  /**
   * The container's filesystem as the host may touch it: its rootfs with its volumes and binds at
   * their destinations, reached through fds only (common/rooted.ts). A running container controls
   * every name in it, so nothing of it is ever turned into a host path string. Close it when done.
   */
  scope(ref: string): Scope {
    const rec = this.get(ref);
    const mounts = rec.mounts.map((m) => {
      const source = m.type === 'bind' ? m.source : this.volumes.inspect(m.source).mountpoint;
      // A bind of a single file is reached through the directory that holds it on the host.
      let file = false;
      try { file = m.type === 'bind' && !statSync(source).isDirectory(); } catch { /* gone: open fails below */ }
      return { destination: m.destination, source, file };
    });
    return Scope.open(rec.rootfs, mounts);
  }
}

/**
 * Create's checks of values the schema (api.ts) cannot judge alone: fields that depend on each other
 * and names the runtime layer knows. Each refusal is one line naming the field.
 */
function checkCreateValues(req: CreateRequest): void {
  if (req.stopSignal !== undefined) {
    try { parseSignal(req.stopSignal); } catch { throw new PierError(`stopSignal: unknown signal ${JSON.stringify(req.stopSignal)}`); }
  }
  try { capabilities(req.capAdd, req.capDrop); } catch (err) { throw new PierError(`capAdd/capDrop: ${messageOf(err)}`); }
  if (req.restart?.maxRetries !== undefined && req.restart.name !== 'on-failure') {
    throw new PierError(`restart.maxRetries: only the on-failure policy takes a retry count, not ${req.restart.name}`);
  }
}

/** The request as the record keeps it: its name, and the runtime by name (none for pier's own). */
function recordConfig(req: CreateRequest, name: string, runtime: string | undefined): CreateRequest {
  const config: CreateRequest = { ...req, name };
  if (runtime) config.runtime = runtime;
  else delete config.runtime;
  return config;
}

/**
 * Docker copies an image's files into a new, empty volume mounted over them. The image's tree is
 * read through fds (its symlinks resolved inside it) and written into the volume the same way.
 */
async function copyUp(rootfs: string, dest: string, volumeDir: string): Promise<void> {
  const scope = Scope.open(rootfs);
  try {
    let dir;
    try { dir = scope.openDir(dest); } catch { return; }
    let empty;
    try { empty = readdirSync(procFd(dir.fd)).length === 0; } finally { closeSync(dir.fd); }
    if (empty) return;
    await applyLayer(archivePath(scope, dest, { followLink: true, contentsOnly: true }), volumeDir, { format: 'plain' }).catch((err: unknown) => {
      throw new PierError(`copying ${dest} into its volume: ${messageOf(err)}`, { cause: err });
    });
  } finally {
    scope.close();
  }
}

function pidAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}

function stopSignalOf(dir: string): string | undefined {
  try {
    const c = JSON.parse(readFileSync(join(dir, 'image-config.json'), 'utf8')) as ImageConfig;
    return c.config?.StopSignal;
  } catch { return undefined; }
}

/** eth* byte counters of the container's network namespace, read through its init's /proc. */
function netCounters(pid: number): { netRx: number; netTx: number } {
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
}

function duBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    let ents;
    try { ents = readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else { try { total += statSync(p).size; } catch { /* raced */ } }
    }
  };
  walk(dir);
  return total;
}
