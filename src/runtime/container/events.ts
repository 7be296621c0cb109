/** events: cgroup statistics of a container, the data `runc events --stats` reports. */
import { PierError } from '../../common/errors.ts';
import { cgroupFromRecord, type CgroupStats } from '../cgroups/index.ts';
import type { RuntimeContext } from './context.ts';

export function stats(ctx: RuntimeContext, id: string): { type: 'stats'; id: string; data: CgroupStats } {
  const rec = ctx.store.load(id);
  if (!rec.cgroup) throw new PierError(`container ${id} has no cgroup`);
  return { type: 'stats', id, data: cgroupFromRecord(rec.cgroup).stats() };
}
