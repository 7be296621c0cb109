/**
 * pier-runtime's cgroup manager (cgroupfs driver): v1, v2 and hybrid hierarchies behind one
 * interface. See README.md for the path rules and the resource → file mapping.
 */
import { PierError } from '../../common/errors.ts';
import { realFs, type CgroupFs } from './fs.ts';
import { CgroupImpl, type Cgroup } from './manager.ts';
import {
  modeOf, parseCgroupMounts, parseSelfCgroup, readMountinfo, readSelfCgroup, resolveDir, usableMounts, v2Controllers,
} from './mountinfo.ts';
import type { CgroupMode, CgroupRecord, HierarchyRecord } from './types.ts';

export type { Cgroup } from './manager.ts';
export type { CgroupMode, CgroupRecord, CgroupStats, HierarchyRecord, MountSource } from './types.ts';
export type { CgroupFs } from './fs.ts';
export { realFs } from './fs.ts';
export { sharesToWeight } from './v2/cpu.ts';

export interface OpenCgroupOptions {
  /** container id: the default cgroupsPath */
  id: string;
  /** linux.cgroupsPath from the spec */
  cgroupsPath?: string;
  /** /proc/self/mountinfo text (tests) */
  mountinfo?: string;
  /** /proc/self/cgroup text (tests) */
  selfCgroup?: string;
  /** filesystem access (tests) */
  fs?: CgroupFs;
}

/** Resolve the container's cgroup in every mounted hierarchy. Touches nothing; create() makes it. */
export function openCgroup(opts: OpenCgroupOptions): Cgroup {
  const fs = opts.fs ?? realFs;
  const mounts = parseCgroupMounts(opts.mountinfo ?? readMountinfo());
  const mode = modeOf(mounts);
  const self = parseSelfCgroup(opts.selfCgroup ?? readSelfCgroup());
  const hierarchies: HierarchyRecord[] = usableMounts(mounts, mode).map((m) => ({
    type: m.type,
    controllers: m.type === 'cgroup2' ? v2Controllers(fs, m.mountPoint) : [...m.controllers],
    mountPoint: m.mountPoint,
    path: resolveDir(m, self, opts.id, opts.cgroupsPath),
  }));
  return new CgroupImpl(mode, hierarchies, fs);
}

const MODES: readonly string[] = ['v1', 'v2', 'hybrid'];

/** Reopen a cgroup from the record stored in the container state. */
export function cgroupFromRecord(rec: CgroupRecord, fs: CgroupFs = realFs): Cgroup {
  const bad = (why: string): never => {
    throw new PierError(`invalid cgroup record in container state: ${why}`);
  };
  if (!rec || typeof rec !== 'object') bad('not an object');
  if (!MODES.includes(rec.mode)) bad(`mode ${JSON.stringify(rec.mode)}`);
  if (!Array.isArray(rec.hierarchies) || rec.hierarchies.length === 0) bad('no hierarchies');
  const hierarchies = rec.hierarchies.map((h, i): HierarchyRecord => {
    if (!h || (h.type !== 'cgroup' && h.type !== 'cgroup2')) bad(`hierarchy ${i} type`);
    if (typeof h.mountPoint !== 'string' || !h.mountPoint.startsWith('/')) bad(`hierarchy ${i} mountPoint`);
    if (typeof h.path !== 'string' || !h.path.startsWith(h.mountPoint + '/')) bad(`hierarchy ${i} path ${JSON.stringify(h.path)}`);
    if (!Array.isArray(h.controllers) || h.controllers.some((c) => typeof c !== 'string')) bad(`hierarchy ${i} controllers`);
    return { type: h.type, controllers: [...h.controllers], mountPoint: h.mountPoint, path: h.path };
  });
  return new CgroupImpl(rec.mode as CgroupMode, hierarchies, fs);
}

/** v1, v2 or hybrid, from the cgroup mounts in mountinfo (default: this process's). */
export function detectMode(mountinfo: string = readMountinfo()): CgroupMode {
  return modeOf(parseCgroupMounts(mountinfo));
}
