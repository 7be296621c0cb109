import type { LinuxResources } from '../../spec.ts';
import { Dir, fail, type ControllerImpl } from '../dir.ts';
import type { CgroupStats } from '../types.ts';

/**
 * Write `first` then `second`; if the kernel refuses `first` with EINVAL because of the current
 * value of `second` (quota/period ratio, rt runtime ≤ period, burst ≤ quota), write `second`
 * first and retry. Whatever still fails is reported against its own field.
 */
export function writePair(
  dir: Dir,
  first: { file: string; value: number | string | undefined; what: string; shown?: number | string },
  second: { file: string; value: number | string | undefined; what: string; shown?: number | string },
): void {
  if (first.value !== undefined) {
    const err = dir.trySet(first.file, first.value);
    if (err === undefined) {
      if (second.value !== undefined) dir.set(second.file, second.value, second.what, second.shown);
      return;
    }
    if (err !== 'EINVAL' || second.value === undefined) {
      dir.set(first.file, first.value, first.what, first.shown); // rethrows with a proper message
      return;
    }
    dir.set(second.file, second.value, second.what, second.shown);
    dir.set(first.file, first.value, first.what, first.shown);
    return;
  }
  if (second.value !== undefined) dir.set(second.file, second.value, second.what, second.shown);
}

const nz = (v: number | undefined): number | undefined => (v === undefined || v === 0 ? undefined : v);

export const cpu: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    const c = r.cpu;
    if (!c) return;
    if (nz(c.shares) !== undefined) {
      dir.set('cpu.shares', c.shares!, 'cpu shares');
      // The kernel clamps out-of-range shares silently; report it like runc does.
      const got = Number(dir.readOpt('cpu.shares'));
      if (Number.isFinite(got) && got !== c.shares) {
        fail('cpu shares', c.shares!, `the kernel set ${got} instead (allowed range 2-262144)`);
      }
    }
    writePair(
      dir,
      { file: 'cpu.cfs_period_us', value: nz(c.period), what: 'cpu period' },
      { file: 'cpu.cfs_quota_us', value: nz(c.quota), what: 'cpu quota' },
    );
    if (c.burst !== undefined) {
      if (!dir.has('cpu.cfs_burst_us')) {
        if (c.burst !== 0) fail('cpu burst', c.burst, 'cpu.cfs_burst_us is not supported by this kernel');
      } else {
        // burst may not exceed quota; the quota itself was written above.
        dir.set('cpu.cfs_burst_us', c.burst, 'cpu burst');
      }
    }
    writePair(
      dir,
      { file: 'cpu.rt_period_us', value: nz(c.realtimePeriod), what: 'cpu realtimePeriod' },
      { file: 'cpu.rt_runtime_us', value: nz(c.realtimeRuntime), what: 'cpu realtimeRuntime' },
    );
    if (c.idle !== undefined) {
      if (!dir.has('cpu.idle')) {
        if (c.idle !== 0) fail('cpu idle', c.idle, 'cpu.idle is not supported by this kernel');
      } else dir.set('cpu.idle', c.idle, 'cpu idle');
    }
  },

  stats(dir: Dir, out: CgroupStats): void {
    const st = dir.keyed('cpu.stat');
    if (!st) return;
    const ns = st.get('throttled_time');
    out.cpu = {
      usageNs: out.cpu?.usageNs ?? NaN,
      throttledPeriods: st.get('nr_throttled'),
      throttledTimeNs: ns,
    };
  },
};
