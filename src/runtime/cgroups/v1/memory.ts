import type { LinuxResources } from '../../spec.ts';
import { Dir, fail, intValue, limitValue, type ControllerImpl } from '../dir.ts';
import type { CgroupStats } from '../types.ts';

const LIMIT = 'memory.limit_in_bytes';
const MEMSW = 'memory.memsw.limit_in_bytes';

/** -1 means unlimited; as a number that compares above every real limit. */
function asLimit(v: number): number {
  return v === -1 ? Infinity : v;
}

/**
 * The kernel keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every step, so when the
 * new memory+swap limit is above the current one it must go first; otherwise the memory limit goes first.
 */
function setLimitAndSwap(dir: Dir, limit: number | undefined, swap: number | undefined): void {
  const hasLimit = limit !== undefined && limit !== 0;
  const hasSwap = swap !== undefined && swap !== 0 && dir.has(MEMSW);
  if (hasLimit && hasSwap && limit !== -1 && swap !== -1 && swap < limit) {
    fail('memory swap', swap, `memory+swap limit must be at least the memory limit ${limit}`);
  }
  const writeLimit = () => { if (hasLimit) dir.set(LIMIT, limit, 'memory limit'); };
  const writeSwap = () => { if (hasSwap) dir.set(MEMSW, swap, 'memory swap'); };
  if (hasSwap) {
    const current = limitValue(dir.readOpt(MEMSW)) ?? Infinity;
    if (asLimit(swap) > current) {
      writeSwap();
      writeLimit();
      return;
    }
  }
  writeLimit();
  writeSwap();
}

export const memory: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    const m = r.memory;
    if (!m) return;
    // Without swap accounting (no memsw files) there is nothing to enforce a swap limit with;
    // like Docker, the swap value is then dropped rather than failing the container.
    setLimitAndSwap(dir, m.limit, m.swap);
    if (m.reservation !== undefined && m.reservation !== 0) dir.set('memory.soft_limit_in_bytes', m.reservation, 'memory reservation');
    // Kernel memory accounting is deprecated; newer kernels drop the files, runc 1.1 ignores it then.
    if (m.kernel !== undefined && m.kernel !== 0 && dir.has('memory.kmem.limit_in_bytes')) {
      dir.set('memory.kmem.limit_in_bytes', m.kernel, 'kernel memory limit');
    }
    if (m.kernelTCP !== undefined && m.kernelTCP !== 0 && dir.has('memory.kmem.tcp.limit_in_bytes')) {
      dir.set('memory.kmem.tcp.limit_in_bytes', m.kernelTCP, 'kernel TCP memory limit');
    }
    if (m.swappiness !== undefined && m.swappiness !== null) {
      if (!Number.isInteger(m.swappiness) || m.swappiness < 0 || m.swappiness > 100) {
        fail('memory swappiness', m.swappiness, 'the valid range is 0-100');
      }
      dir.set('memory.swappiness', m.swappiness, 'memory swappiness');
    }
    if (m.disableOOMKiller === true) dir.set('memory.oom_control', 1, 'memory disableOOMKiller', 'true');
  },

  stats(dir: Dir, out: CgroupStats): void {
    const usage = intValue(dir.readOpt('memory.usage_in_bytes'));
    if (usage === undefined) return;
    const oom = dir.keyed('memory.oom_control');
    // v1 counts OOM kills but not OOM situations (those are only signalled through eventfd), so
    // oomEvents is the kill count plus one while the group is stuck under OOM with the killer off.
    const kills = oom?.get('oom_kill') ?? 0;
    out.memory = {
      usage,
      maxUsage: intValue(dir.readOpt('memory.max_usage_in_bytes')),
      limit: limitValue(dir.readOpt(LIMIT)),
      failcnt: intValue(dir.readOpt('memory.failcnt')),
      oomEvents: kills + (oom?.get('under_oom') ?? 0),
      oomKills: kills,
    };
  },
};
