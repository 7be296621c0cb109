/** ps: the host pids in the container's cgroup. */
import { PierError } from '../../common/errors.ts';
import { cgroupFromRecord } from '../cgroups/index.ts';
import type { RuntimeContext } from './context.ts';

export function ps(ctx: RuntimeContext, id: string): number[] {
  const rec = ctx.store.load(id);
  if (!rec.cgroup) throw new PierError(`container ${id} has no cgroup`);
  return cgroupFromRecord(rec.cgroup).pids().sort((a, b) => a - b);
}
