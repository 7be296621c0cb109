import type { LinuxResources } from '../../spec.ts';
import { Dir, fail, intValue, limitValue, type ControllerImpl } from '../dir.ts';
import type { CgroupStats } from '../types.ts';

const max = (v: number): string => (v === -1 ? 'max' : String(v));

/**
 * The spec's swap is memory+swap (the v1 memsw meaning); v2's memory.swap.max is swap alone,
 * so the value written is swap - limit. undefined = leave the file alone.
 */
export function swapV2(limit: number | undefined, swap: number | undefined): string | undefined {
  if (swap === undefined || swap === 0) return undefined;
  if (swap === -1) return 'max';
  if (limit === undefined || limit === 0) fail('memory swap', swap, 'a swap limit needs a memory limit on cgroup v2');
  if (limit === -1) fail('memory swap', swap, 'memory+swap cannot be limited while memory is unlimited');
  if (swap < limit) fail('memory swap', swap, `memory+swap limit must be at least the memory limit ${limit}`);
  return String(swap - limit);
}

export const memory: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    const m = r.memory;
    if (!m) return;
    const swap = swapV2(m.limit, m.swap);
    if (m.swappiness !== undefined && m.swappiness !== null && m.swappiness !== -1) {
      fail('memory swappiness', m.swappiness, 'cgroup v2 has no per-cgroup swappiness');
    }
    if (m.disableOOMKiller === true) fail('memory disableOOMKiller', 'true', 'cgroup v2 cannot disable the OOM killer');
    if (m.limit !== undefined && m.limit !== 0) {
      if (m.checkBeforeUpdate && m.limit > 0) {
        const current = intValue(dir.readOpt('memory.current'));
        if (current !== undefined && current > m.limit) {
          fail('memory limit', m.limit, `current usage ${current} is above it (checkBeforeUpdate)`);
        }
      }
      dir.set('memory.max', max(m.limit), 'memory limit', m.limit);
    }
    if (swap !== undefined) {
      if (!dir.has('memory.swap.max')) {
        // No swap accounting: nothing can enforce it (same choice as v1 without memsw).
      } else dir.set('memory.swap.max', swap, 'memory swap', m.swap!);
    }
    if (m.reservation !== undefined && m.reservation !== 0) dir.set('memory.low', max(m.reservation), 'memory reservation', m.reservation);
    // kernel / kernelTCP: v2 accounts kernel memory inside memory.max and has no separate limit.
  },

  stats(dir: Dir, out: CgroupStats): void {
    const usage = intValue(dir.readOpt('memory.current'));
    if (usage === undefined) return;
    const ev = dir.keyed('memory.events');
    out.memory = {
      usage,
      maxUsage: intValue(dir.readOpt('memory.peak')),
      limit: limitValue(dir.readOpt('memory.max')),
      // "max" counts the times usage hit memory.max: the closest thing v2 has to v1's failcnt.
      failcnt: ev?.get('max'),
      oomEvents: ev?.get('oom') ?? 0,
      oomKills: ev?.get('oom_kill') ?? 0,
    };
  },
};
