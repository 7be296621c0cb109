/** top: the container's processes as `ps` rows, from the runtime's pid list and /proc. */
import { conflict } from '../errors.ts';
import { hasProcess } from '../state.ts';
import type { ContainerContext } from '../containers/context.ts';

export async function top(ctx: ContainerContext, ref: string): Promise<{ titles: string[]; processes: string[][] }> {
  const rec = ctx.records.get(ref);
  if (!hasProcess(rec.state.status)) throw conflict(`container ${rec.name} is not running`);
  const pids = await ctx.host.driver(rec).pids(rec.id);
  return { titles: ['UID', 'PID', 'PPID', 'TIME', 'CMD'], processes: ctx.host.proc.top(pids) };
}
