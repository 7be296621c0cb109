/**
 * The OCI spec of an engine container: the image layer's spec for the image (command, env, user,
 * workdir) with docker's defaults on top — docker's capability set, the container's network
 * namespace, /etc/hosts, resolv.conf and hostname from the engine, volumes, resource limits, --init.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PierError } from '../../common/errors.ts';
import { imageSpec, type ImageConfig } from '../../image/index.ts';
import { CAP_NAMES, DOCKER_DEFAULT_CAPS, ROOTFS_MOUNTS_ANNOTATION, type Mount, type Spec } from '../../runtime/index.ts';
import type { ContainerInfo } from '../api.ts';
import { runtimeBinaryOf } from './runtime.ts';

export const CPU_PERIOD = 100_000;
/** Where --init's binary appears in the container (docker's path). */
export const INIT_PATH = '/sbin/docker-init';

function capName(c: string): string {
  const up = c.toUpperCase();
  return up.startsWith('CAP_') ? up : `CAP_${up}`;
}

/** docker's --cap-add/--cap-drop rules, ALL included; unknown names are an error. */
export function capabilities(add: string[] = [], drop: string[] = []): string[] {
  const known = new Set(CAP_NAMES);
  for (const c of [...add, ...drop]) {
    if (c.toUpperCase() !== 'ALL' && !known.has(capName(c))) throw new PierError(`unknown capability ${JSON.stringify(c)}`);
  }
  const addAll = add.some((c) => c.toUpperCase() === 'ALL');
  const dropAll = drop.some((c) => c.toUpperCase() === 'ALL');
  let caps = new Set<string>(dropAll ? [] : DOCKER_DEFAULT_CAPS);
  if (addAll) caps = new Set(CAP_NAMES);
  for (const c of add) if (c.toUpperCase() !== 'ALL') caps.add(capName(c));
  if (!dropAll) for (const c of drop) caps.delete(capName(c));
  return CAP_NAMES.filter((c) => caps.has(c));
}

export interface SpecInputs {
  rec: ContainerInfo;
  imageConfig: ImageConfig;
  /** Container dir holding hosts, resolv.conf, hostname. */
  dir: string;
  netnsPath?: string;
  /** The container is in the host's network namespace (host mode, or joined to a host-mode one). */
  hostNetwork?: boolean;
  /** Namespace files to join instead of making new ones (another container's, by /proc path). */
  joins?: { ipc?: string; uts?: string; pid?: string };
  /** The cgroup its own goes under (a pod's). */
  cgroupParent?: string;
  /**
   * Where to read the image's /etc/passwd and /etc/group for a named user: a view of the rootfs
   * when it is prepared as mounts (rec.rootfs is then an empty mount point on the host).
   */
  userRoot?: string;
  /** Host paths of the container's mounts, in the order of rec.mounts. */
  mountSources: string[];
  initBinary?: string;
}

export function buildSpec(inp: SpecInputs): Spec {
  const { rec, imageConfig } = inp;
  const c = rec.config;
  const hostname = c.hostname ?? rec.id.slice(0, 12);
  const entrypoint = c.entrypoint === undefined ? undefined : c.entrypoint.filter((a) => a !== '');
  const spec = imageSpec(imageConfig, {
    rootfs: inp.userRoot ?? rec.rootfs,
    ...(c.cmd && c.cmd.length ? { args: c.cmd } : {}),
    ...(entrypoint !== undefined ? { entrypoint } : {}),
    env: c.env ?? [],
    ...(c.user ? { user: c.user } : {}),
    ...(c.workdir ? { cwd: c.workdir } : {}),
    hostname,
    terminal: c.tty ?? false,
    readonly: c.readOnly ?? false,
  });
  spec.root = { ...spec.root!, path: rec.rootfs };
  // the snapshot's mounts, for pier's runtime to make in the container's own mount namespace
  if (rec.rootfsMounts && !runtimeBinaryOf(rec)) spec.annotations = { ...spec.annotations, [ROOTFS_MOUNTS_ANNOTATION]: JSON.stringify(rec.rootfsMounts) };
  const proc = spec.process!;
  if (c.tty && !proc.env!.some((e) => e.startsWith('TERM='))) proc.env!.push('TERM=xterm');
  const caps = capabilities(c.capAdd, c.capDrop);
  proc.capabilities = { bounding: [...caps], effective: [...caps], permitted: [...caps] };
  // docker leaves no_new_privs off so setuid binaries (su, ping) keep working.
  proc.noNewPrivileges = false;
  // Like docker, containers get the daemon's own open-files limit (raising it may be refused).
  const nofile = ownNofile();
  proc.rlimits = [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }];
  if (c.init) {
    if (!inp.initBinary) throw new PierError('--init: pier-init is not built (run scripts/setup)');
    proc.args = [INIT_PATH, '--', ...proc.args!];
  }
  const linux = spec.linux!;
  linux.cgroupsPath = `${inp.cgroupParent ?? '/pier'}/${rec.id}`;
  const joins = inp.joins ?? {};
  const ns = linux.namespaces!.filter((n) => n.type !== 'network' && !(n.type in joins));
  if (inp.netnsPath) ns.push({ type: 'network', path: inp.netnsPath });
  else if (!inp.hostNetwork && rec.network.mode !== 'host') throw new PierError('internal: container network namespace missing');
  for (const [type, path] of Object.entries(joins)) if (path) ns.push({ type: type as 'ipc' | 'uts' | 'pid', path });
  linux.namespaces = ns;
  // a joined UTS namespace has its owner's hostname; setting one needs a namespace of its own
  if (joins.uts) delete spec.hostname;
  const res = linux.resources ?? {};
  if (c.memory) res.memory = { limit: c.memory, swap: c.memory };
  if (c.cpus) res.cpu = { quota: Math.round(c.cpus * CPU_PERIOD), period: CPU_PERIOD };
  if (c.pidsLimit) res.pids = { limit: c.pidsLimit };
  linux.resources = res;
  if (c.stopSignal) spec.annotations = { ...spec.annotations, 'org.opencontainers.image.stopSignal': c.stopSignal };
  spec.annotations = { ...spec.annotations, 'io.pier.container.name': rec.name };

  const mounts: Mount[] = [...(spec.mounts ?? [])];
  // /sys read-write only matters for privileged containers, which pier does not make.
  const etc = (name: string, dest: string): Mount => ({ destination: dest, type: 'bind', source: join(inp.dir, name), options: ['rbind', 'rprivate', ...(c.readOnly ? ['ro'] : [])] });
  mounts.push(etc('hostname', '/etc/hostname'), etc('hosts', '/etc/hosts'), etc('resolv.conf', '/etc/resolv.conf'));
  rec.mounts.forEach((m, i) => {
    mounts.push({ destination: m.destination, type: 'bind', source: inp.mountSources[i], options: ['rbind', 'rprivate', m.readOnly ? 'ro' : 'rw'] });
  });
  if (c.init && inp.initBinary) mounts.push({ destination: INIT_PATH, type: 'bind', source: inp.initBinary, options: ['bind', 'ro', 'nosuid', 'nodev'] });
  spec.mounts = mounts;
  return spec;
}

let nofileCache: number | undefined;

/** This process's hard RLIMIT_NOFILE, from /proc/self/limits (1024 if unreadable). */
function ownNofile(): number {
  if (nofileCache !== undefined) return nofileCache;
  try {
    const m = /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    nofileCache = m ? Number(m[1]) : 1024;
  } catch {
    nofileCache = 1024;
  }
  return nofileCache;
}
