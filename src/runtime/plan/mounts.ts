/** config.json mounts → MOUNT/MKDIR/SYMLINK ops (targets are in-root; see native/PROTOCOL.md). */
import { statSync } from 'node:fs';
import { posix, resolve as resolvePath } from 'node:path';
import { PierError } from '../../common/errors.ts';
import type { Mount } from '../spec.ts';
import { MS } from './flags.ts';
import { op, type PlanOp } from './ops.ts';

export interface CgroupMount { name: string; hostPath: string; fstype: 'cgroup' | 'cgroup2'; options: string }

export interface MountContext {
  bundle: string;
  userns: boolean;     // the container has its own user namespace
  netns: boolean;      // … and its own network namespace
  cgroupns: boolean;   // … and its own cgroup namespace
  cgroupMounts: CgroupMount[];
}

export interface MountOptions {
  flags: number;        // MS_* to set
  propagation: number[]; // each applied by its own mount call, as the kernel requires
  bind: boolean;
  recursive: boolean;
  data: string;         // options the filesystem parses
}

const SET: Record<string, number> = {
  ro: MS.RDONLY, nosuid: MS.NOSUID, nodev: MS.NODEV, noexec: MS.NOEXEC, sync: MS.SYNCHRONOUS,
  remount: MS.REMOUNT, mand: MS.MANDLOCK, dirsync: MS.DIRSYNC, nosymfollow: MS.NOSYMFOLLOW,
  noatime: MS.NOATIME, nodiratime: MS.NODIRATIME, relatime: MS.RELATIME, strictatime: MS.STRICTATIME,
  lazytime: MS.LAZYTIME, silent: MS.SILENT,
};
const CLEAR: Record<string, number> = {
  rw: MS.RDONLY, suid: MS.NOSUID, dev: MS.NODEV, exec: MS.NOEXEC, async: MS.SYNCHRONOUS, nomand: MS.MANDLOCK,
  atime: MS.NOATIME, diratime: MS.NODIRATIME, norelatime: MS.RELATIME, nostrictatime: MS.STRICTATIME,
  nolazytime: MS.LAZYTIME, loud: MS.SILENT, symfollow: MS.NOSYMFOLLOW, defaults: 0,
};
const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};
const UNSUPPORTED = new Set(['tmpcopyup', 'idmap', 'ridmap', 'rro', 'rrw', 'rnosuid', 'rsuid', 'rnodev', 'rdev',
  'rnoexec', 'rexec', 'rnoatime', 'ratime', 'rrelatime', 'rnorelatime', 'rstrictatime', 'rnostrictatime',
  'rnodiratime', 'rdiratime', 'rnosymfollow', 'rsymfollow']);

/** Propagation flag for linux.rootfsPropagation (undefined when unset or empty). */
export function propagationFlag(name: string | undefined): number | undefined {
  if (!name) return undefined;
  const f = PROPAGATION[name];
  if (f === undefined) throw new PierError(`rootfsPropagation: unknown mode ${JSON.stringify(name)}`);
  return f;
}

export function parseMountOptions(options: string[] = [], where = 'mount'): MountOptions {
  const r: MountOptions = { flags: 0, propagation: [], bind: false, recursive: false, data: '' };
  const data: string[] = [];
  for (const o of options) {
    if (o === 'bind' || o === 'rbind') { r.bind = true; r.recursive ||= o === 'rbind'; continue; }
    if (UNSUPPORTED.has(o)) throw new PierError(`${where}: mount option ${o} is not supported by pier`);
    if (o in SET) r.flags |= SET[o];
    else if (o in CLEAR) r.flags &= ~CLEAR[o];
    else if (o in PROPAGATION) r.propagation.push(PROPAGATION[o]);
    else data.push(o);
  }
  r.data = data.join(',');
  return r;
}

/** Normalised absolute container path. */
export function containerPath(p: string): string {
  const n = posix.normalize(posix.join('/', p));
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

const propOps = (dest: string, props: number[]): PlanOp[] => props.map((p) => op('MOUNT', '', dest, '', p, '', ''));

/** A bind of a host path, then a remount for per-mount flags (the bind itself ignores them). */
function bindOps(source: string, dest: string, o: MountOptions): PlanOp[] {
  let kind: string;
  try {
    kind = statSync(source).isDirectory() ? 'dir' : 'file';
  } catch {
    throw new PierError(`mount ${source} on ${dest}: source does not exist`);
  }
  const ops = [op('MOUNT', source, dest, '', MS.BIND | (o.recursive ? MS.REC : 0), '', kind)];
  const extra = o.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
  if (extra) ops.push(op('MOUNT', '', dest, '', MS.BIND | MS.REMOUNT | extra, '', ''));
  return [...ops, ...propOps(dest, o.propagation)];
}

function cgroupOps(dest: string, o: MountOptions, ctx: MountContext): PlanOp[] {
  const flags = o.flags & ~MS.REMOUNT;
  const one = (c: CgroupMount, at: string): PlanOp[] =>
    ctx.cgroupns
      ? [op('MOUNT', c.fstype, at, c.fstype, flags, c.options, 'dir')]
      : bindOps(c.hostPath, at, { ...o, flags, bind: true, recursive: true, propagation: [] });
  if (ctx.cgroupMounts.length === 0) throw new PierError(`mount cgroup on ${dest}: no cgroup hierarchies were given`);
  if (ctx.cgroupMounts.length === 1 && ctx.cgroupMounts[0].name === '') {
    return [...one(ctx.cgroupMounts[0], dest), ...propOps(dest, o.propagation)];
  }
  // v1/hybrid: a tmpfs holding one directory per hierarchy, like the host's /sys/fs/cgroup
  const ops: PlanOp[] = [op('MOUNT', 'tmpfs', dest, 'tmpfs', flags & ~MS.RDONLY, 'mode=755', 'dir')];
  for (const c of ctx.cgroupMounts) {
    const at = posix.join(dest, c.name);
    ops.push(...one(c, at));
    // cpu,cpuacct is also reachable as cpu and cpuacct
    if (c.name.includes(',')) for (const part of c.name.split(',')) ops.push(op('SYMLINK', c.name, posix.join(dest, part)));
  }
  if (flags & MS.RDONLY) ops.push(op('MOUNT', '', dest, '', MS.REMOUNT | flags, 'mode=755', ''));
  return [...ops, ...propOps(dest, o.propagation)];
}

/** Ops for one config.json mount. */
export function mountOps(m: Mount, ctx: MountContext): PlanOp[] {
  const dest = containerPath(m.destination);
  const o = parseMountOptions(m.options, `mount ${dest}`);
  if (m.uidMappings?.length || m.gidMappings?.length) throw new PierError(`mount ${dest}: id-mapped mounts are not supported by pier`);
  const type = m.type ?? (o.bind ? 'bind' : '');
  if (o.bind || type === 'bind') {
    if (!m.source) throw new PierError(`mount ${dest}: bind mount without a source`);
    return bindOps(resolvePath(ctx.bundle, m.source), dest, o);
  }
  if (!type) throw new PierError(`mount ${dest}: no type`);
  if (type === 'cgroup' || type === 'cgroup2') return cgroupOps(dest, o, ctx);
  // sysfs belongs to the network namespace's owner: without our own, show the host's read-only view
  if (type === 'sysfs' && ctx.userns && !ctx.netns) {
    return bindOps('/sys', dest, { ...o, bind: true, recursive: true });
  }
  return [op('MOUNT', m.source ?? type, dest, type, o.flags, o.data, 'dir'), ...propOps(dest, o.propagation)];
}

/** Every mount option the builder understands, for `features`. */
export const MOUNT_OPTIONS: readonly string[] = ['bind', 'rbind', ...Object.keys(SET), ...Object.keys(CLEAR), ...Object.keys(PROPAGATION)].sort();
