/**
 * Engine: the daemon's model of containers, as one object over small services. Each operation is
 * a file of containers/ (create, start, stop, kill, pause, remove, exit, attach, prune) or
 * observe/ (top, stats, df); the restart manager (containers/reconcile.ts) carries out what an
 * exit leaves as desired state. Everything the host does is behind host.ts's interfaces, wired
 * here once from one EngineConfig — a test hands fakes instead (test/helpers/engine-fakes.ts).
 * Every change of a record goes through records.update (store.ts): under its lock, on a copy,
 * checked against the state machine (state.ts).
 */
import { EventEmitter } from 'node:events';
import { statSync } from 'node:fs';
import { messageOf } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import { realClock } from '../../common/clock.ts';
import type { WorkQueue } from '../../common/workqueue.ts';
import { ImageService } from '../../image/index.ts';
import { Scope } from '../../common/rooted.ts';
import { NetworkManager } from '../network/index.ts';
import { VolumeManager } from '../volume/index.ts';
import type { ContainerInfo, CreateRequest, ExitInfo, LogEntry, PodCreateRequest, PodInfo, PodRecord, StatsInfo, StreamLine } from '../api.ts';
import { join } from 'node:path';
import { PodRecords } from './pods/store.ts';
import type { PodContext } from './pods/context.ts';
import { createPod } from './pods/create.ts';
import { ensurePodRunning, startPod, stopPod } from './pods/lifecycle.ts';
import { removePod } from './pods/remove.ts';
import { inspectPod, listPods } from './pods/inspect.ts';
import { createMember } from './pods/members.ts';
import { makeStateDirs, type EnginePaths } from '../paths.ts';
import { ContainerRecords } from './store.ts';
import { BinaryDriver, LibraryDriver, Runtimes, runtimeBinaryOf, type RuntimeDriver } from './runtime.ts';
import { restartOnDaemonStart } from './restart.ts';
import { findInitBinary } from './init.ts';
import { ShimPool } from './shim-pool.ts';
import { RealShims, realCgroups, realProc, type EngineHost } from './host.ts';
import { defaultEngineConfig, type EngineConfig } from './config.ts';
import { hasProcess, isActive } from './state.ts';
import type { EngineEvent } from './events.ts';
import { LiveTable } from './containers/live.ts';
import type { ContainerContext } from './containers/context.ts';
import { create } from './containers/create.ts';
import { start, startHeld } from './containers/start.ts';
import { stop } from './containers/stop.ts';
import { kill } from './containers/kill.ts';
import { freeze } from './containers/pause.ts';
import { remove, removeHeld, volumeUsers } from './containers/remove.ts';
import { exitFileOf, exitedHeld, watch } from './containers/exit.ts';
import { logs, runAttached, wait } from './containers/attach.ts';
import { pruneContainers, pruneVolumes, removeVolume } from './containers/prune.ts';
import { restartManager } from './containers/reconcile.ts';
import { top } from './observe/top.ts';
import { stats } from './observe/stats.ts';
import { df, type DiskUsage } from './observe/df.ts';

export interface EngineOptions {
  paths: EnginePaths;
  log: Logger;
  /** One config, read at the entry point (config.ts); default: no trace, pool of shim hosts. */
  config?: EngineConfig;
  images?: ImageService;
  networks?: NetworkManager;
  /** The runtimes containers may name (the daemon reads them from daemon.json at start); default: pier's own only. */
  runtimes?: Runtimes;
  /** Replace the host's effects (tests: test/helpers/engine-fakes.ts). */
  host?: Partial<EngineHost>;
}

export class Engine extends EventEmitter {
  readonly paths: EnginePaths;
  readonly log: Logger;
  readonly config: EngineConfig;
  readonly images: ImageService;
  readonly networks: NetworkManager;
  readonly volumes: VolumeManager;
  readonly records: ContainerRecords;
  readonly pods: PodRecords;
  readonly runtimes: Runtimes;
  readonly host: EngineHost;
  private readonly live = new LiveTable();
  private readonly ctx: ContainerContext;
  private readonly podCtx: PodContext;
  private readonly queue: WorkQueue;
  private closed = false;

  constructor(opts: EngineOptions) {
    super();
    this.paths = opts.paths;
    this.log = opts.log;
    this.config = opts.config ?? defaultEngineConfig();
    const cfg = this.config;
    this.images = opts.images ?? new ImageService({ root: opts.paths.root });
    this.networks = opts.networks ?? new NetworkManager({
      root: opts.paths.root, run: opts.paths.run, log: (m: string) => this.log.info(m),
      ...(cfg.bridge ? { defaultBridge: cfg.bridge } : {}),
      ...(cfg.bridgeSubnet ? { defaultSubnet: cfg.bridgeSubnet } : {}),
      ...(cfg.cniPath ? { cniPath: cfg.cniPath } : {}),
    });
    this.volumes = new VolumeManager(opts.paths.volumes);
    this.records = new ContainerRecords(opts.paths.containers);
    this.pods = new PodRecords(join(opts.paths.root, 'pods'));
    makeStateDirs(opts.paths);
    this.runtimes = opts.runtimes ?? new Runtimes();
    const drivers = new Map<string, RuntimeDriver>();
    this.host = {
      images: this.images,
      networks: this.networks,
      shims: opts.host?.shims ?? new RealShims(new ShimPool(opts.paths.shims, opts.log, cfg.shimHosts)),
      driver: (rec) => {
        const key = `${runtimeBinaryOf(rec) ?? ''}\0${rec.runtimeRoot}`;
        let d = drivers.get(key);
        const bin = runtimeBinaryOf(rec);
        if (!d) drivers.set(key, (d = bin ? new BinaryDriver(bin, rec.runtimeRoot) : new LibraryDriver(rec.runtimeRoot)));
        return d;
      },
      proc: realProc,
      cgroups: realCgroups,
      clock: realClock,
      initBinary: () => findInitBinary(cfg.initBinary),
      ...opts.host,
    };
    const base = {
      paths: this.paths, log: this.log, config: cfg, records: this.records, host: this.host, volumes: this.volumes,
      runtimes: this.runtimes, live: this.live,
      emit: (e: EngineEvent) => { this.emit('event', e); },
      closed: () => this.closed,
      pods: (id: string) => this.pods.find(id),
      // a pod's member starts once its pod's infra runs (podman starts the pod with it)
      beforeStart: async (rec: ContainerInfo) => { if (rec.pod && !rec.infra) await ensurePodRunning(this.podCtx, rec.pod); },
    };
    // the queue is made after the context that names it: reconcile is only called once both exist
    this.ctx = { ...base, reconcile: (id) => this.queue.add(id) };
    this.queue = restartManager(this.ctx);
    this.podCtx = { ctx: this.ctx, pods: this.pods };
  }

  /** Daemon start: read records, bring networks back, and take every container over again. */
  async init(): Promise<void> {
    // Shim hosts of a previous daemon keep their own sockets open while they have containers.
    this.host.networks.ensureDefault();
    await this.host.networks.restore();
    this.pods.load((id, why) => this.log.error(`pod ${id.slice(0, 12)}: its record cannot be read (${why}); left on disk as it is`));
    const recs = this.records.load((id, why) => this.log.error(`container ${id.slice(0, 12)}: its record cannot be read (${why}); left on disk as it is`));
    await Promise.all(recs.map((rec) => this.records.lock(rec.id, () => this.takeOver(rec.id)).catch((err) => this.log.error(`taking over ${rec.name}: ${messageOf(err)}`))));
    for (const r of recs) this.queue.add(r.id);
    this.host.shims.fill();
  }

  /** After a daemon restart: match one record with what is really there (inside its lock). */
  private async takeOver(id: string): Promise<void> {
    const rec = this.records.get(id);
    const st = rec.state.status;
    if (hasProcess(st)) {
      const exit = this.host.shims.exitOf(exitFileOf(this.ctx, id));
      if (exit || !this.host.shims.alive(rec.state.shimPid)) await exitedHeld(this.ctx, id, exit);
      else watch(this.ctx, id);
      return;
    }
    if (st === 'removing') { await removeHeld(this.ctx, id, { volumes: true }); return; }
    if (st === 'exited' && restartOnDaemonStart(rec.config.restart, rec.state)) {
      try { await startHeld(this.ctx, id); } catch (err) { this.log.error(`restart of ${rec.name} at daemon start: ${messageOf(err)}`); }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.shutdown();
    this.host.shims.close();
    await this.host.networks.close();
  }

  /** Let the restart manager finish what is queued (tests). */
  settled(): Promise<void> {
    return this.queue.idle();
  }

  get(ref: string): ContainerInfo {
    return this.records.get(ref);
  }

  list(all = false): ContainerInfo[] {
    return this.records.all().filter((c) => all || isActive(c.state.status));
  }

  create(req: CreateRequest): Promise<ContainerInfo> { return req.pod ? createMember(this.podCtx, req) : create(this.ctx, req); }

  start(ref: string): Promise<ContainerInfo> { return start(this.ctx, ref); }

  createPod(req: PodCreateRequest): Promise<PodRecord> { return createPod(this.podCtx, req); }
  startPod(ref: string): Promise<PodRecord> { return startPod(this.podCtx, ref); }
  stopPod(ref: string, timeoutSec?: number): Promise<PodRecord> { return stopPod(this.podCtx, ref, timeoutSec); }
  removePod(ref: string, opts: { force?: boolean } = {}): Promise<string> { return removePod(this.podCtx, ref, opts); }
  listPods(): PodInfo[] { return listPods(this.podCtx); }
  inspectPod(ref: string): PodInfo { return inspectPod(this.podCtx, ref); }
  stop(ref: string, timeoutSec?: number): Promise<ContainerInfo> { return stop(this.ctx, ref, timeoutSec); }
  kill(ref: string, signal?: string): Promise<void> { return kill(this.ctx, ref, signal); }
  pause(ref: string): Promise<void> { return freeze(this.ctx, ref, 'paused'); }
  unpause(ref: string): Promise<void> { return freeze(this.ctx, ref, 'running'); }
  remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> { return remove(this.ctx, ref, opts); }
  wait(ref: string): Promise<ExitInfo> { return wait(this.ctx, ref); }
  runAttached(ref: string, signal: AbortSignal): AsyncGenerator<StreamLine> { return runAttached(this.ctx, ref, signal); }
  logs(ref: string, opts: { follow?: boolean; tail?: number; since?: Date; until?: Date; signal?: AbortSignal }): AsyncIterable<LogEntry> { return logs(this.ctx, ref, opts); }
  top(ref: string): Promise<{ titles: string[]; processes: string[][] }> { return top(this.ctx, ref); }
  stats(ref: string): Promise<StatsInfo> { return stats(this.ctx, ref); }
  df(): Promise<DiskUsage> { return df(this.ctx); }
  pruneContainers(): Promise<string[]> { return pruneContainers(this.ctx); }
  pruneVolumes(): string[] { return pruneVolumes(this.ctx); }
  removeVolume(name: string): void { removeVolume(this.ctx, name); }
  volumeUsers(name: string, except?: string): string[] { return volumeUsers(this.ctx, name, except); }

  async restart(ref: string, timeoutSec?: number): Promise<ContainerInfo> {
    await this.stop(ref, timeoutSec);
    const rec = await this.start(ref);
    this.emit('event', { type: 'restart', id: rec.id, name: rec.name, image: rec.image, revision: rec.revision });
    return rec;
  }

  /** Change one record under its lock, on a copy (the health monitor's way in). */
  update(id: string, fn: (draft: ContainerInfo) => void): Promise<ContainerInfo> {
    return this.records.update(id, fn);
  }

  /**
   * The container's filesystem as the host may touch it: its rootfs with its volumes and binds at
   * their destinations, reached through fds only (common/rooted.ts). A running container controls
   * every name in it, so nothing of it is ever turned into a host path string. Close it when done.
   */
  scope(ref: string): Scope {
    const rec = this.get(ref);
    if (rec.rootfsMounts && hasProcess(rec.state.status)) {
      // its tree exists only in its own mount namespace (volumes included): reach it through its init
      return Scope.openProcessRoot(rec.state.pid);
    }
    const view = rec.rootfsMounts ? this.host.images.mountView(`ctr-${rec.id}`) : undefined;
    const mounts = rec.mounts.map((m) => {
      const source = m.type === 'bind' ? m.source : this.volumes.inspect(m.source).mountpoint;
      // A bind of a single file is reached through the directory that holds it on the host.
      let file = false;
      try { file = m.type === 'bind' && !statSync(source).isDirectory(); } catch { /* gone: open fails below */ }
      return { destination: m.destination, source, file };
    });
    let scope: Scope;
    try {
      scope = Scope.open(view?.path ?? rec.rootfs, mounts);
    } catch (err) {
      view?.release();
      throw err;
    }
    if (view) {
      const close = scope.close.bind(scope);
      scope.close = () => { close(); view.release(); };
    }
    return scope;
  }
}
