/** pause/resume: freeze and thaw the container's cgroup. */
import { PierError } from '../../common/errors.ts';
import { cgroupFromRecord } from '../cgroups/index.ts';
import type { RuntimeContext } from './context.ts';

export function pause(ctx: RuntimeContext, id: string): void {
  const rec = ctx.store.load(id);
  const status = ctx.store.status(rec);
  if (status !== 'running' && status !== 'created') throw new PierError(`cannot pause container ${id}: it is ${status}`);
  if (!rec.cgroup) throw new PierError(`container ${id} has no cgroup to freeze`);
  cgroupFromRecord(rec.cgroup).freeze();
}

export function resume(ctx: RuntimeContext, id: string): void {
  const rec = ctx.store.load(id);
  const status = ctx.store.status(rec);
  if (status !== 'paused') throw new PierError(`cannot resume container ${id}: it is ${status}, not paused`);
  cgroupFromRecord(rec.cgroup!).thaw();
}
