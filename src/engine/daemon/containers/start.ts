/**
 * start: what lasts one run — the network sandbox, the hosts files, the bundle — then the shim.
 * Runs inside the container's lock (startHeld); the record becomes running only once the shim
 * reports the container's pid, and a failure tears the sandbox down and keeps the error.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PierError, messageOf } from '../../../common/errors.ts';
import { writeFileAtomic } from '../../../common/atomic.ts';
import type { ImageConfig } from '../../../image/index.ts';
import type { Sandbox } from '../../network/index.ts';
import type { ShimConfig } from '../../shim/index.ts';
import type { ContainerInfo } from '../../api.ts';
import { ApiError, conflict } from '../errors.ts';
import { buildSpec } from '../spec.ts';
import { hasProcess } from '../state.ts';
import { checkPortsAgainstContainers } from './create.ts';
import { eventOf, stamp, trace, type ContainerContext } from './context.ts';
import { refreshHosts } from './hosts.ts';
import { watch } from './exit.ts';

const DEFAULT_LOG = { maxSize: 10 * 1024 * 1024, maxFiles: 3 };

export async function start(ctx: ContainerContext, ref: string): Promise<ContainerInfo> {
  const id = ctx.records.idOf(ref);
  const first = ctx.records.get(id);
  if (ctx.beforeStart && !hasProcess(first.state.status)) await ctx.beforeStart(first);
  return ctx.records.lock(id, async () => {
    const rec = ctx.records.get(id);
    if (hasProcess(rec.state.status)) return rec;
    if (rec.state.status === 'removing') throw conflict(`container ${rec.name} is being removed`);
    return startHeld(ctx, id, { manual: true });
  });
}

/**
 * Start a container whose lock the caller holds. manual: a user's start (clears "stopped by a
 * user"); restart: the restart manager's (counts one restart).
 */
export async function startHeld(ctx: ContainerContext, id: string, opts: { manual?: boolean; restart?: boolean } = {}): Promise<ContainerInfo> {
  const rec = ctx.records.get(id);
  const dir = ctx.records.dirOf(id);
  let sandbox: Sandbox | undefined;
  let saved: ContainerInfo;
  let view: { path: string; release(): void } | undefined;
  try {
    const runtime = startRuntime(ctx, rec);
    const wanted = rec.config.ports ?? [];
    if (wanted.length) {
      checkPortsAgainstContainers(ctx, wanted, id);
      ctx.host.networks.checkPorts(wanted);
    }
    const t = stamp();
    const joined = joinedNamespaces(ctx, rec);
    let netnsPath: string | undefined;
    let hostNetwork = rec.network.mode === 'host';
    if (rec.network.mode === 'container') {
      // another container's network: its namespace, its hosts and resolv.conf (docker's container mode)
      const target = joined.network!;
      netnsPath = target.network.netnsPath;
      hostNetwork = target.network.mode === 'host';
      if (!netnsPath && !hostNetwork) throw new PierError(`container ${rec.name}: ${target.name} has no network namespace to join`);
      const tdir = ctx.records.dirOf(target.id);
      for (const f of ['hosts', 'resolv.conf', 'hostname']) copyFileSync(join(tdir, f), join(dir, f));
      copyFileSync(join(tdir, 'hosts'), join(dir, 'hosts.base'));
      sandbox = { containerId: id, mode: 'none', attachments: [], ports: [], hosts: '', resolvConf: '', ...(netnsPath ? { netnsPath } : {}) };
    } else {
      const hostname = joined.uts ? readHostname(ctx, joined.uts.id) : rec.config.hostname ?? id.slice(0, 12);
      sandbox = await ctx.host.networks.setup({
        containerId: id,
        name: rec.name,
        hostname,
        mode: rec.network.mode,
        networks: rec.network.networks.map((n) => ({ name: n, aliases: rec.config.networkAliases ?? [] })),
        ports: wanted,
        ...(rec.config.extraHosts ? { extraHosts: rec.config.extraHosts } : {}),
      });
      netnsPath = sandbox.netnsPath;
      trace(ctx, id, 'network setup', t());
      writeFileSync(join(dir, 'hosts.base'), sandbox.hosts);
      writeFileSync(join(dir, 'hosts'), sandbox.hosts);
      writeFileSync(join(dir, 'resolv.conf'), sandbox.resolvConf);
      writeFileSync(join(dir, 'hostname'), `${hostname}\n`);
    }
    const imageConfig = JSON.parse(readFileSync(join(dir, 'image-config.json'), 'utf8')) as ImageConfig;
    const mountSources = rec.mounts.map((m) => (m.type === 'bind' ? m.source : ctx.volumes.inspect(m.source).mountpoint));
    const initBinary = rec.config.init ? ctx.host.initBinary() : undefined;
    const nsPaths = Object.fromEntries((['ipc', 'uts', 'pid'] as const).filter((ns) => joined[ns]).map((ns) => [ns, `/proc/${joined[ns]!.state.pid}/ns/${ns}`]));
    const cgroupParent = rec.pod ? ctx.pods?.(rec.pod)?.cgroupParent : undefined;
    // a named user is looked up in the image's files: through a short-lived view when the rootfs is
    // mounts as data (nothing of it is mounted on the host otherwise)
    const user = rec.config.user ?? imageConfig.config?.User ?? '';
    view = rec.rootfsMounts && user !== '' ? ctx.host.images.mountView(`ctr-${id}`) : undefined;
    const spec = buildSpec({ rec, imageConfig, dir, ...(view ? { userRoot: view.path } : {}), ...(netnsPath ? { netnsPath } : {}), hostNetwork, joins: nsPaths, ...(cgroupParent ? { cgroupParent } : {}), mountSources, ...(initBinary ? { initBinary } : {}) });
    view?.release();
    view = undefined;
    const bundle = join(dir, 'bundle');
    mkdirSync(bundle, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(bundle, 'config.json'), JSON.stringify(spec));
    const exitFile = join(dir, 'exit.json');
    rmSync(exitFile, { force: true });
    const cfg: ShimConfig = {
      id,
      bundle,
      runtimeRoot: rec.runtimeRoot,
      ...(runtime.path ? { runtime: runtime.path } : {}),
      log: { path: rec.logPath, maxSize: rec.config.log?.maxSize ?? DEFAULT_LOG.maxSize, maxFiles: rec.config.log?.maxFiles ?? DEFAULT_LOG.maxFiles },
      socket: rec.shimSocket,
      exitFile,
      stdin: rec.config.stdin ?? false,
      tty: rec.config.tty ?? false,
      // a runc binary takes no mounts for its root: its shim makes them (pier's runtime: the spec's annotation)
      ...(runtime.path && rec.rootfsMounts ? { rootfsMounts: { target: rec.rootfs, mounts: rec.rootfsMounts } } : {}),
    };
    const t2 = stamp();
    const { shimPid, initPid } = await ctx.host.shims.start(cfg);
    trace(ctx, id, 'shim start', t2());
    trace(ctx, id, 'setup to running', t());
    const sb = sandbox;
    saved = await ctx.records.updateHeld(id, (d) => {
      if (runtime.path) { d.config.runtime = runtime.name; d.runtimePath = runtime.path; } else { delete d.config.runtime; delete d.runtimePath; }
      d.state = {
        ...d.state,
        status: 'running', pid: initPid, shimPid,
        startedAt: new Date(ctx.host.clock.now()).toISOString(),
        oomKilled: false,
        ...(opts.manual ? { manuallyStopped: false } : {}),
        restartCount: d.state.restartCount + (opts.restart ? 1 : 0),
      };
      delete d.state.error;
      delete d.state.exitCode;
      delete d.state.finishedAt;
      delete d.state.restartAt;
      d.network.ips = Object.fromEntries(sb.attachments.map((a) => [a.network, a.ip]));
      if (sb.netnsPath && d.network.mode !== 'container') d.network.netnsPath = sb.netnsPath; else delete d.network.netnsPath;
      // What was published: a host port of 0 is one the network layer picked.
      d.network.ports = sb.ports;
    });
  } catch (err) {
    view?.release();
    if ((sandbox && rec.network.mode !== 'container') || rec.network.mode === 'bridge' || rec.network.mode === 'none') await ctx.host.networks.teardown(id).catch((e) => ctx.log.warn(`teardown ${id}: ${messageOf(e)}`));
    await ctx.records.updateHeld(id, (d) => {
      d.state.error = messageOf(err);
      // a restart that failed leaves the container down; the user's start of it reports the error
      if (d.state.status === 'restarting') { d.state.status = 'exited'; delete d.state.restartAt; }
    }).catch((e) => ctx.log.warn(`recording the failed start of ${rec.name}: ${messageOf(e)}`));
    throw err;
  }
  ctx.emit(eventOf('start', saved));
  refreshHosts(ctx, saved.network.networks);
  watch(ctx, id);
  return saved;
}

/**
 * The running containers whose namespaces this one joins (network, ipc, uts, pid): each must be
 * running now, since its namespaces live as long as its process (or, for a network, its sandbox).
 */
function joinedNamespaces(ctx: ContainerContext, rec: ContainerInfo): { network?: ContainerInfo; ipc?: ContainerInfo; uts?: ContainerInfo; pid?: ContainerInfo } {
  const out: { network?: ContainerInfo; ipc?: ContainerInfo; uts?: ContainerInfo; pid?: ContainerInfo } = {};
  const want: [keyof typeof out, string | undefined][] = [['network', rec.network.container], ['ipc', rec.joins?.ipc], ['uts', rec.joins?.uts], ['pid', rec.joins?.pid]];
  for (const [ns, tid] of want) {
    if (!tid) continue;
    const t = ctx.records.find(tid);
    if (!t) throw new ApiError(404, `container ${rec.name}: the container whose ${ns} namespace it joins is gone (${tid.slice(0, 12)})`);
    if (!hasProcess(t.state.status)) throw conflict(`container ${rec.name}: cannot join the ${ns} namespace of ${t.name}: it is not running`);
    out[ns] = t;
  }
  return out;
}

function readHostname(ctx: ContainerContext, id: string): string {
  try { return readFileSync(join(ctx.records.dirOf(id), 'hostname'), 'utf8').trim() || id.slice(0, 12); } catch { return id.slice(0, 12); }
}

/**
 * The runtime a container is to start with, looked up in this daemon's table every start: a name
 * (or, in a record of an older pier, the path of a configured runtime, which is recorded by name
 * from now on). A runtime no longer configured is refused with the names that are.
 */
function startRuntime(ctx: ContainerContext, rec: ContainerInfo): { name: string; path?: string } {
  const rt = ctx.runtimes.find(rec.config.runtime);
  if (!rt) throw new PierError(`container ${rec.name}: runtime ${JSON.stringify(rec.config.runtime)} is not configured (known: ${ctx.runtimes.names().join(', ')}; configure it in daemon.json under "runtimes")`);
  return rt;
}
