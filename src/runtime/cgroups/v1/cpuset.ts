import { posix } from 'node:path';
import type { LinuxResources } from '../../spec.ts';
import type { CgroupFs } from '../fs.ts';
import { Dir, type ControllerImpl } from '../dir.ts';

export const cpuset: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    const c = r.cpu;
    if (!c) return;
    if (c.cpus) dir.set('cpuset.cpus', c.cpus, 'cpu cpus');
    if (c.mems) dir.set('cpuset.mems', c.mems, 'cpu mems');
  },
};

/**
 * A new v1 cpuset cgroup starts with empty cpus and mems, and no task can join it until both are
 * set; copy them down from the parent, for every level below the mount point that is still empty.
 */
export function inheritCpuset(fs: CgroupFs, mountPoint: string, target: string): void {
  const rel = posix.relative(mountPoint, target);
  if (rel === '' || rel.startsWith('..')) return;
  let parent = new Dir(mountPoint, fs);
  for (const part of rel.split('/')) {
    const child = new Dir(posix.join(parent.path, part), fs);
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if ((child.readOpt(file) ?? '') !== '') continue;
      const value = parent.readOpt(file) ?? '';
      if (value === '') continue;
      child.set(file, value, `inherited ${file}`);
    }
    parent = child;
  }
}
