/** update: apply new linux.resources to a live container and remember them. */
import { PierError } from '../../common/errors.ts';
import { cgroupFromRecord } from '../cgroups/index.ts';
import type { LinuxResources } from '../spec.ts';
import type { RuntimeContext } from './context.ts';

export function update(ctx: RuntimeContext, id: string, resources: LinuxResources): void {
  const rec = ctx.store.load(id);
  if (ctx.store.status(rec) === 'stopped') throw new PierError(`cannot update container ${id}: it is stopped`);
  if (!rec.cgroup) throw new PierError(`container ${id} has no cgroup`);
  cgroupFromRecord(rec.cgroup).update(resources);
  const linux = (rec.config.linux ??= {});
  const cur = (linux.resources ??= {});
  for (const [k, v] of Object.entries(resources) as [keyof LinuxResources, unknown][]) {
    if (v && typeof v === 'object' && !Array.isArray(v) && cur[k] && typeof cur[k] === 'object') {
      Object.assign(cur[k] as object, v);
    } else {
      (cur as Record<string, unknown>)[k] = v;
    }
  }
  ctx.store.save(rec);
}
