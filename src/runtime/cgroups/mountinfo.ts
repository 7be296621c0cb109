import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { PierError } from '../../common/errors.ts';
import type { CgroupFs } from './fs.ts';
import type { CgroupMode } from './types.ts';

/** A cgroup filesystem mount found in mountinfo. */
export interface CgroupMount {
  type: 'cgroup' | 'cgroup2';
  /** v1 only: controllers and "name=…" from the super options, in kernel order */
  controllers: string[];
  mountPoint: string;
  /** the hierarchy path mounted there ("/" unless a sub-tree is bind-mounted) */
  root: string;
}

/** v1 controller names as they appear in super options; anything else there is a mount flag. */
export const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio', 'blkio',
  'perf_event', 'hugetlb', 'pids', 'rdma', 'misc', 'debug',
]);

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Every cgroup/cgroup2 mount, first mount of each hierarchy only (the same hierarchy can be
 * mounted several times; the first one is what the host's tools use).
 */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  const seen = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 6 || fields.length < sep + 4) continue;
    const fstype = fields[sep + 1];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const root = unescape(fields[3]);
    const mountPoint = unescape(fields[4]);
    let controllers: string[] = [];
    if (fstype === 'cgroup') {
      controllers = fields[sep + 3].split(',').filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name='));
      if (controllers.length === 0) continue;
    }
    const key = fstype === 'cgroup2' ? 'cgroup2' : [...controllers].sort().join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ type: fstype, controllers, mountPoint, root });
  }
  return out;
}

export function modeOf(mounts: CgroupMount[]): CgroupMode {
  const v1 = mounts.some((m) => m.type === 'cgroup' && m.controllers.some((c) => !c.startsWith('name=')));
  const v2 = mounts.some((m) => m.type === 'cgroup2');
  if (v1 && v2) return 'hybrid';
  if (v1) return 'v1';
  if (v2) return 'v2';
  throw new PierError('no cgroup filesystem is mounted (looked for cgroup and cgroup2 in mountinfo)');
}

/** The mounts a container's cgroup spans in the given mode (pure v2 ignores named v1 hierarchies). */
export function usableMounts(mounts: CgroupMount[], mode: CgroupMode): CgroupMount[] {
  if (mode === 'v2') return mounts.filter((m) => m.type === 'cgroup2').slice(0, 1);
  if (mode === 'v1') return mounts.filter((m) => m.type === 'cgroup');
  return [...mounts.filter((m) => m.type === 'cgroup'), ...mounts.filter((m) => m.type === 'cgroup2').slice(0, 1)];
}

/** /proc/self/cgroup: "id:controllers:path" lines. */
export interface SelfCgroupEntry { id: string; controllers: string[]; path: string }

export function parseSelfCgroup(text: string): SelfCgroupEntry[] {
  const out: SelfCgroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const ctl = line.slice(a + 1, b);
    out.push({ id: line.slice(0, a), controllers: ctl ? ctl.split(',') : [], path: line.slice(b + 1) });
  }
  return out;
}

/** The directory of the caller's own cgroup in a mounted hierarchy. */
export function ownDir(m: CgroupMount, self: SelfCgroupEntry[]): string {
  const entry =
    m.type === 'cgroup2'
      ? self.find((e) => e.id === '0' && e.controllers.length === 0)
      : self.find((e) => e.controllers.some((c) => m.controllers.includes(c)));
  if (!entry) {
    const what = m.type === 'cgroup2' ? 'cgroup v2' : m.controllers.join(',');
    throw new PierError(`cannot find the ${what} hierarchy in /proc/self/cgroup`);
  }
  let p = entry.path;
  // A mount of a sub-tree shows paths relative to the hierarchy root; strip the mounted root.
  if (m.root !== '/' && (p === m.root || p.startsWith(m.root + '/'))) p = p.slice(m.root.length) || '/';
  return posix.join(m.mountPoint, p);
}

export const SYSTEMD_PATH_ERROR =
  'systemd cgroup paths need --systemd-cgroup, which pier-runtime does not support without systemd';

/**
 * Where the container's cgroup goes in one hierarchy (runc cgroupfs rules): an absolute cgroupsPath
 * under the mount point, a relative one (or the default, the container id) under the caller's own cgroup.
 */
export function resolveDir(m: CgroupMount, self: SelfCgroupEntry[], id: string, cgroupsPath: string | undefined): string {
  const p = cgroupsPath === undefined || cgroupsPath === '' ? id : cgroupsPath;
  if (!p.startsWith('/') && p.split(':').length === 3) {
    throw new PierError(`invalid cgroupsPath ${JSON.stringify(p)}: ${SYSTEMD_PATH_ERROR}`);
  }
  // Cleaning as if rooted keeps "../" from climbing out of the base directory.
  const clean = posix.normalize('/' + p).replace(/\/+$/, '');
  if (clean === '') throw new PierError(`invalid cgroupsPath ${JSON.stringify(p)}: it names the base cgroup itself`);
  const base = p.startsWith('/') ? m.mountPoint : ownDir(m, self);
  return posix.join(base, clean);
}

export function readMountinfo(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

export function readSelfCgroup(): string {
  return readFileSync('/proc/self/cgroup', 'utf8');
}

/** Controllers a cgroup2 directory offers its children. */
export function v2Controllers(fs: CgroupFs, dir: string): string[] {
  try {
    return fs.read(posix.join(dir, 'cgroup.controllers')).trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}
