/**
 * kill: a signal to the container's process, inside its lock (so it reaches this run, not a
 * restarted one). SIGKILL counts as a stop by the user, as docker has it.
 */
import { hasProcess } from '../state.ts';
import { conflict } from '../errors.ts';
import { eventOf, type ContainerContext } from './context.ts';

export function normalizeSignal(signal: string): string {
  return signal.toUpperCase().startsWith('SIG') || /^\d+$/.test(signal) ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
}

export function kill(ctx: ContainerContext, ref: string, signal = 'SIGKILL'): Promise<void> {
  const id = ctx.records.idOf(ref);
  return ctx.records.lock(id, async () => {
    let rec = ctx.records.get(id);
    if (!hasProcess(rec.state.status)) throw conflict(`container ${rec.name} is not running`);
    const sig = normalizeSignal(signal);
    if (sig === 'SIGKILL' || sig === '9') rec = await ctx.records.updateHeld(id, (d) => { d.state.manuallyStopped = true; });
    await ctx.host.driver(rec).kill(id, sig);
    ctx.emit(eventOf('kill', rec, { signal: sig }));
  });
}
