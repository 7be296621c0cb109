import type { LinuxResources } from '../../spec.ts';
import { Dir, fail, type ControllerImpl } from '../dir.ts';
import type { CgroupStats } from '../types.ts';
import { writePair } from '../v1/cpu.ts';

/**
 * v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000], the linear map runc 1.1 uses
 * (integer division): 2 → 1, 1024 → 39, 262144 → 10000. 0 means unset.
 */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

export const cpu: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    const c = r.cpu;
    if (!c) return;
    if ((c.realtimePeriod ?? 0) !== 0 || (c.realtimeRuntime ?? 0) !== 0) {
      fail('cpu realtimeRuntime/realtimePeriod', `${c.realtimeRuntime ?? 0}/${c.realtimePeriod ?? 0}`, 'cgroup v2 has no realtime CPU controls');
    }
    if (c.shares !== undefined && c.shares !== 0) {
      const w = sharesToWeight(c.shares);
      if (w < 1 || w > 10000) fail('cpu shares', c.shares, `converts to cpu.weight ${w}, outside 1-10000`);
      dir.set('cpu.weight', w, 'cpu shares', c.shares);
    }
    const quota = c.quota ?? 0;
    const period = c.period ?? 0;
    let cpuMax: string | undefined;
    if (quota !== 0 || period !== 0) {
      // cpu.max is "quota period"; a lone period keeps the current quota instead of resetting it.
      const q = quota === 0 ? (dir.readOpt('cpu.max')?.split(' ')[0] ?? 'max') : quota < 0 ? 'max' : String(quota);
      cpuMax = period !== 0 ? `${q} ${period}` : q;
    }
    const burst = c.burst;
    if (burst !== undefined && !dir.has('cpu.max.burst')) {
      if (burst !== 0) fail('cpu burst', burst, 'cpu.max.burst is not supported by this kernel');
    }
    writePair(
      dir,
      { file: 'cpu.max', value: cpuMax, what: 'cpu quota/period', shown: `${quota}/${period}` },
      { file: 'cpu.max.burst', value: burst !== undefined && dir.has('cpu.max.burst') ? burst : undefined, what: 'cpu burst' },
    );
    if (c.idle !== undefined) {
      if (!dir.has('cpu.idle')) {
        if (c.idle !== 0) fail('cpu idle', c.idle, 'cpu.idle is not supported by this kernel');
      } else dir.set('cpu.idle', c.idle, 'cpu idle');
    }
  },

  stats(dir: Dir, out: CgroupStats): void {
    const st = dir.keyed('cpu.stat');
    const usec = st?.get('usage_usec');
    if (!st || usec === undefined) return;
    const thr = st.get('throttled_usec');
    out.cpu = {
      usageNs: usec * 1000,
      throttledPeriods: st.get('nr_throttled'),
      throttledTimeNs: thr === undefined ? undefined : thr * 1000,
    };
  },
};
