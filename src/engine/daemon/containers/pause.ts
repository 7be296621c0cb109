/** pause (running → paused) and unpause (paused → running) through the runtime's freezer. */
import { conflict } from '../errors.ts';
import { eventOf, type ContainerContext } from './context.ts';

export function freeze(ctx: ContainerContext, ref: string, to: 'paused' | 'running'): Promise<void> {
  const from = to === 'paused' ? 'running' : 'paused';
  const id = ctx.records.idOf(ref);
  return ctx.records.lock(id, async () => {
    const rec = ctx.records.get(id);
    if (rec.state.status !== from) throw conflict(`container ${rec.name} is not ${from}`);
    const drv = ctx.host.driver(rec);
    await (to === 'paused' ? drv.pause(id) : drv.resume(id));
    const saved = await ctx.records.updateHeld(id, (d) => { d.state.status = to; });
    ctx.emit(eventOf(to === 'paused' ? 'pause' : 'unpause', saved));
  });
}
