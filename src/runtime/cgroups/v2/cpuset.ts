import type { LinuxResources } from '../../spec.ts';
import { Dir, type ControllerImpl } from '../dir.ts';

/** v2 cpusets inherit the parent's effective set when empty, so no copying is needed. */
export const cpuset: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    const c = r.cpu;
    if (!c) return;
    if (c.cpus) dir.set('cpuset.cpus', c.cpus, 'cpu cpus');
    if (c.mems) dir.set('cpuset.mems', c.mems, 'cpu mems');
  },
};
