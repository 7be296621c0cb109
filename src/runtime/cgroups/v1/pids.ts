import type { LinuxResources } from '../../spec.ts';
import { Dir, intValue, limitValue, type ControllerImpl } from '../dir.ts';
import type { CgroupStats } from '../types.ts';

/** pids.max is the same file on v1 and v2; 0 and negative limits mean unlimited. */
export const pids: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    if (!r.pids || r.pids.limit === undefined) return;
    const v = r.pids.limit > 0 ? String(r.pids.limit) : 'max';
    dir.set('pids.max', v, 'pids limit', r.pids.limit);
  },
  stats(dir: Dir, out: CgroupStats): void {
    const current = intValue(dir.readOpt('pids.current'));
    if (current === undefined) return;
    out.pids = { current, limit: limitValue(dir.readOpt('pids.max')) };
  },
};
