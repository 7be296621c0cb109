/**
 * create: decide everything that can fail, then make what lasts (the record, the rootfs, volumes).
 * A failure at any step undoes the steps before it: no record, dir, rootfs or new volume is left.
 */
import { closeSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PierError, messageOf } from '../../../common/errors.ts';
import { writeFileAtomic } from '../../../common/atomic.ts';
import { applyLayer, archivePath } from '../../../image/index.ts';
import { Scope, procFd } from '../../../common/rooted.ts';
import { parseSignal } from '../../../runtime/index.ts';
import type { ContainerInfo, CreateRequest, MountRecord, PodRecord, PortMapping } from '../../api.ts';
import { ApiError, conflict } from '../errors.ts';
import { checkMountDestination, parseVolumeSpec } from '../mounts.ts';
import { capabilities } from '../spec.ts';
import { newId, validateName } from '../store.ts';
import { isActive } from '../state.ts';
import { eventOf, stamp, trace, type ContainerContext } from './context.ts';

/** What the pods service adds when it makes a pod's container (pods/members.ts). */
export interface PodMembership {
  pod: PodRecord;
  infra?: boolean;
}

export async function create(ctx: ContainerContext, req: CreateRequest, member?: PodMembership): Promise<ContainerInfo> {
  if (!req.image) throw new PierError('no image given');
  const name = req.name ? validateName(req.name.replace(/^\//, '')) : ctx.records.generateName();
  const taken = ctx.records.nameTaken(name);
  if (taken) throw conflict(`container name "${name}" is already in use by container ${taken.id.slice(0, 12)}: remove it or pick another name`);
  const id = newId();
  // held from here until the record is written or the create fails: a second create of the name
  // racing this one is refused above, not after both made a rootfs
  ctx.records.reserve(name, id);
  try {
    return await make(ctx, req, name, id, member);
  } finally {
    ctx.records.release(name);
  }
}

async function make(ctx: ContainerContext, req: CreateRequest, name: string, id: string, member?: PodMembership): Promise<ContainerInfo> {
  const image = await ctx.host.images.resolve(req.image).catch((err) => {
    throw new ApiError(404, `${messageOf(err)} (pull or build it first)`);
  });
  // Decide everything that can fail before anything is made.
  const shared = member && !member.infra ? podShares(member.pod, req) : undefined;
  const network = shared?.network ?? req.network;
  const target = network?.startsWith('container:') ? joinTarget(ctx, 'network', network) : undefined;
  const mode = target ? 'container' : network === 'none' || network === 'host' ? network : 'bridge';
  const netName = mode === 'bridge' ? (network && network !== 'default' ? network : 'bridge') : mode;
  if (mode === 'bridge') ctx.host.networks.inspect(netName);
  const how = target ? `--network container:${target.name}` : `--network ${mode}`;
  if (mode !== 'bridge' && req.ports?.length) throw new PierError(`published ports need a bridge network, not ${how}`);
  if (mode !== 'bridge' && req.networkAliases?.length) throw new PierError(`network aliases need a user network, not ${how}`);
  if (target && req.extraHosts?.length) throw new PierError(`extra hosts conflict with ${how}: the container uses ${target.name}'s /etc/hosts`);
  if (target && req.hostname) throw new PierError(`a hostname conflicts with ${how}: the container has ${target.name}'s`);
  const joins: NonNullable<ContainerInfo['joins']> = {};
  for (const ns of ['ipc', 'uts', 'pid'] as const) {
    const v = shared?.[ns] ?? req[ns];
    if (v && v !== 'private') joins[ns] = joinTarget(ctx, ns, v).id;
  }
  if (joins.uts && req.hostname) throw new PierError(`a hostname conflicts with --uts ${shared?.uts ? `(the pod ${member!.pod.name} shares its hostname)` : req.uts}`);
  if (req.ports?.length) {
    checkPortsAgainstContainers(ctx, req.ports);
    ctx.host.networks.checkPorts(req.ports);
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
  const rt = ctx.runtimes.get(req.runtime);
  if (rt.path) {
    try { statSync(rt.path); } catch { throw new PierError(`runtime ${rt.name}: its binary ${rt.path} is not there`); }
  }
  if (rt.path && req.tty) throw new PierError(`runtime ${rt.name}: a terminal (-t) needs pier's own runtime: runc hands the pty out only over a console socket`);
  checkCreateValues(req);
  if (req.init && !ctx.host.initBinary()) throw new PierError('--init: pier-init is not built (run scripts/setup)');
  if (req.restart?.name && req.autoRemove && req.restart.name !== 'no') throw new PierError('--restart and --rm cannot be used together');

  const dir = ctx.records.dirOf(id);
  const made: { rootfs?: string; volumes: string[] } = { volumes: [] };
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const key = `ctr-${id}`;
    const t = stamp();
    // The snapshot's mounts as data: pier's runtime makes them in the container's own mount
    // namespace, the shim of a runc binary in a private one runc starts in. pierd holds no mount.
    const prepared: { rootfs: string; mounts?: ContainerInfo['rootfsMounts'] } = await ctx.host.images.prepareRootfsMounts(image, key);
    trace(ctx, id, 'rootfs', t());
    made.rootfs = key;
    writeFileAtomic(join(dir, 'image-config.json'), JSON.stringify(image.config));
    // the image's tree as the host may look at it, for the volume work below (a view while it runs)
    const view = vspecs.length && prepared.mounts ? ctx.host.images.mountView(key) : undefined;
    const tree = view?.path ?? prepared.rootfs;
    const mounts: MountRecord[] = [];
    try {
      // A hostile image may ship /data -> /proc: the runtime would mount over the container's procfs
      // (the CVE-2019-19921 class). Refuse by where the destination leads in the image, too.
      if (vspecs.length) {
        const scope = Scope.open(tree);
        try {
          for (const v of vspecs) {
            const resolved = scope.realPath(v.destination);
            if (resolved !== v.destination) checkMountDestination(resolved, `${v.destination} (a symlink in the image to ${resolved})`);
          }
        } finally {
          scope.close();
        }
      }
      for (const v of vspecs) {
        if (v.kind === 'bind') {
          mounts.push({ type: 'bind', source: v.source!, destination: v.destination, readOnly: v.readOnly });
          continue;
        }
        const existed = v.kind === 'named' && ctx.volumes.tryInspect(v.source!) !== undefined;
        const vol = ctx.volumes.create(v.kind === 'named' ? v.source : undefined);
        if (!existed) {
          made.volumes.push(vol.name);
          await copyUp(tree, v.destination, vol.mountpoint);
        }
        mounts.push({ type: 'volume', source: vol.name, destination: v.destination, readOnly: v.readOnly, ...(v.kind === 'anonymous' ? { anonymous: true } : {}) });
      }
    } finally {
      view?.release();
    }
    const c = image.config.config ?? {};
    const rec: ContainerInfo = {
      id,
      revision: 1,
      name,
      created: new Date(ctx.host.clock.now()).toISOString(),
      image: image.ref,
      imageId: image.configDigest,
      command: [...(req.entrypoint ?? c.Entrypoint ?? []), ...(req.cmd?.length ? req.cmd : req.entrypoint ? [] : c.Cmd ?? [])].filter((a) => a !== ''),
      config: recordConfig(req, name, rt.path ? rt.name : undefined, member),
      ...(rt.path ? { runtimePath: rt.path } : {}),
      state: { status: 'created', pid: 0, shimPid: 0, oomKilled: false, restartCount: 0, manuallyStopped: false },
      mounts,
      network: { mode, ...(target ? { container: target.id } : {}), networks: mode === 'bridge' ? [netName] : [], ips: {}, ports: req.ports ?? [] },
      ...(Object.keys(joins).length ? { joins } : {}),
      ...(member ? { pod: member.pod.id, ...(member.infra ? { infra: true } : {}) } : {}),
      rootfs: prepared.rootfs,
      ...(prepared.mounts ? { rootfsMounts: prepared.mounts } : {}),
      logPath: join(dir, 'container.log'),
      // Short: unix socket paths are limited to 107 bytes and PIER_RUN may be deep.
      shimSocket: join(ctx.paths.shims, `${id.slice(0, 24)}.sock`),
      runtimeRoot: ctx.paths.runtimeRoot,
    };
    if (rec.command.length === 0) throw new PierError('no command: the image has no Entrypoint or Cmd, give one');
    const saved = ctx.records.insert(rec);
    ctx.emit(eventOf('create', saved));
    return saved;
  } catch (err) {
    if (made.rootfs) await ctx.host.images.removeRootfs(made.rootfs).catch(() => undefined);
    for (const v of made.volumes) { try { ctx.volumes.remove(v); } catch { /* best effort */ } }
    ctx.records.discard(id);
    throw err;
  }
}

/** A host port another container (up, or created and about to be) publishes is taken. */
export function checkPortsAgainstContainers(ctx: ContainerContext, ports: PortMapping[], except?: string): void {
  for (const c of ctx.records.scan()) {
    if (c.id === except) continue;
    if (!isActive(c.state.status) && c.state.status !== 'created') continue;
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

/**
 * What a pod's member takes from the pod instead of the request: its network and each namespace the
 * pod shares. Asking for one of them too is a conflict, named.
 */
function podShares(pod: PodRecord, req: CreateRequest): { network?: string; ipc?: string; uts?: string; pid?: string } {
  const out: { network?: string; ipc?: string; uts?: string; pid?: string } = {};
  const infra = `container:${pod.infraId}`;
  if (pod.share.includes('net')) {
    if (req.network !== undefined) throw new PierError(`--network conflicts with --pod ${pod.name}: the pod's containers use its network`);
    if (req.ports?.length) throw new PierError(`published ports conflict with --pod ${pod.name}: publish them on the pod (pier pod create -p)`);
    out.network = infra;
  }
  for (const ns of ['ipc', 'uts', 'pid'] as const) {
    if (!pod.share.includes(ns)) continue;
    if (req[ns] !== undefined) throw new PierError(`--${ns} conflicts with --pod ${pod.name}: the pod shares its ${ns} namespace`);
    out[ns] = infra;
  }
  return out;
}

/** The container a `container:NAME` mode names: it must exist, not be this one's pod-less self. */
function joinTarget(ctx: ContainerContext, what: string, mode: string): ContainerInfo {
  const ref = mode.slice('container:'.length);
  const t = ctx.records.find(ref);
  if (!t) throw new ApiError(404, `--${what} container:${ref}: no such container`);
  if (t.network.mode === 'container' && what === 'network') {
    // joining a joiner is joining what it joined (docker follows the chain the same way)
    const root = ctx.records.find(t.network.container!);
    if (root) return root;
  }
  return t;
}

/** The request as the record keeps it: its name, and the runtime by name (none for pier's own). */
function recordConfig(req: CreateRequest, name: string, runtime: string | undefined, member?: PodMembership): CreateRequest {
  const config: CreateRequest = { ...req, name };
  if (member) config.pod = member.pod.id;
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
