import { Dir, intValue, type ControllerImpl } from '../dir.ts';
import type { CgroupStats } from '../types.ts';

/** cpuacct has no resources; it only supplies the CPU time used. */
export const cpuacct: ControllerImpl = {
  apply(): void {},
  stats(dir: Dir, out: CgroupStats): void {
    const usage = intValue(dir.readOpt('cpuacct.usage'));
    if (usage === undefined) return;
    out.cpu = { ...out.cpu, usageNs: usage };
  },
};
