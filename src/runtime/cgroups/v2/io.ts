import type { LinuxResources } from '../../spec.ts';
import { Dir, fail, type ControllerImpl } from '../dir.ts';

/** blkio weight [10, 1000] → io.weight [1, 10000] (runc's linear map); BFQ's io.bfq.weight takes the v1 range as is. */
export function blkioToIoWeight(w: number): number {
  return 1 + Math.floor(((w - 10) * 9999) / 990);
}

const THROTTLE = [
  ['throttleReadBpsDevice', 'rbps'],
  ['throttleWriteBpsDevice', 'wbps'],
  ['throttleReadIOPSDevice', 'riops'],
  ['throttleWriteIOPSDevice', 'wiops'],
] as const;

export const io: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    const b = r.blockIO;
    if (!b) return;
    const bfq = dir.has('io.bfq.weight');
    if (b.leafWeight !== undefined && b.leafWeight !== 0) fail('blockIO leafWeight', b.leafWeight, 'cgroup v2 has no leaf weights');
    if (b.weight !== undefined && b.weight !== 0) {
      if (bfq) dir.set('io.bfq.weight', b.weight, 'blockIO weight');
      else if (dir.has('io.weight')) dir.set('io.weight', `default ${blkioToIoWeight(b.weight)}`, 'blockIO weight', b.weight);
      else fail('blockIO weight', b.weight, `no io.bfq.weight or io.weight in ${dir.path}`);
    }
    for (const d of b.weightDevice ?? []) {
      const dev = `${d.major}:${d.minor}`;
      if (d.leafWeight !== undefined && d.leafWeight !== 0) fail(`blockIO weightDevice ${dev} leafWeight`, d.leafWeight, 'cgroup v2 has no leaf weights');
      if (d.weight === undefined || d.weight === 0) continue;
      const what = `blockIO weightDevice ${dev} weight`;
      if (bfq) dir.set('io.bfq.weight', `${dev} ${d.weight}`, what, d.weight);
      else if (dir.has('io.weight')) dir.set('io.weight', `${dev} ${blkioToIoWeight(d.weight)}`, what, d.weight);
      else fail(what, d.weight, `no io.bfq.weight or io.weight in ${dir.path}`);
    }
    for (const [field, key] of THROTTLE) {
      for (const d of b[field] ?? []) {
        const dev = `${d.major}:${d.minor}`;
        // v1 takes 0 as "no limit"; v2 spells that "max".
        dir.set('io.max', `${dev} ${key}=${d.rate === 0 ? 'max' : d.rate}`, `blockIO ${field} ${dev}`, d.rate);
      }
    }
  },
};
