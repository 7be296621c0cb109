/**
 * stop: mark the container stopped by a user (under its lock), send its stop signal, wait for the
 * exit up to the timeout, then SIGKILL. The exit is recorded by exit.ts like any other; the waiter
 * is registered inside the lock, so an exit between the lock and the signal is not missed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageConfig } from '../../../image/index.ts';
import type { ContainerInfo, ExitInfo } from '../../api.ts';
import { hasProcess } from '../state.ts';
import { eventOf, type ContainerContext } from './context.ts';

const DEFAULT_STOP_TIMEOUT = 10;

export async function stop(ctx: ContainerContext, ref: string, timeoutSec?: number): Promise<ContainerInfo> {
  const id = ctx.records.idOf(ref);
  const turn = await ctx.records.lock(id, async () => {
    const cur = ctx.records.get(id);
    if (cur.state.status === 'removing') return { rec: cur };
    const rec = await ctx.records.updateHeld(id, (d) => {
      d.state.manuallyStopped = true;
      // restarting: nothing runs; the restart manager finds it exited and leaves it so
      if (d.state.status === 'restarting') { d.state.status = 'exited'; delete d.state.restartAt; }
    });
    return hasProcess(rec.state.status) ? { rec, exit: nextExit(ctx, rec) } : { rec };
  });
  const { rec, exit } = turn;
  if (!exit) return rec;
  const drv = ctx.host.driver(rec);
  if (rec.state.status === 'paused') await drv.resume(id).catch(() => undefined);
  const sig = rec.config.stopSignal ?? stopSignalOf(ctx.records.dirOf(id)) ?? 'SIGTERM';
  ctx.emit(eventOf('kill', rec, { signal: sig }));
  await drv.kill(id, sig).catch(() => undefined);
  const timeout = (timeoutSec ?? rec.config.stopTimeout ?? DEFAULT_STOP_TIMEOUT) * 1000;
  const abort = new AbortController();
  const timer = ctx.host.clock.sleep(timeout, abort.signal).then(() => 'timeout' as const, () => 'exited' as const);
  const first = await Promise.race([exit, timer]);
  abort.abort();
  if (first === 'timeout') {
    ctx.emit(eventOf('kill', rec, { signal: 'SIGKILL' }));
    await drv.kill(id, 'SIGKILL').catch(() => undefined);
    await exit;
  }
  const after = ctx.records.find(id);
  ctx.emit(eventOf('stop', after ?? rec));
  return after ?? rec;
}

/**
 * Resolves at the next exit (or the removal), or right away when nothing runs. Call inside the
 * container's lock: exits are recorded under it, so none can come between the look and the wait.
 */
export function nextExit(ctx: ContainerContext, rec: ContainerInfo): Promise<ExitInfo> {
  const now = (): ExitInfo => ({ exitCode: rec.state.exitCode ?? 0, oomKilled: rec.state.oomKilled });
  if (!hasProcess(rec.state.status)) return Promise.resolve(now());
  return new Promise((resolve) => ctx.live.of(rec.id).waiters.push((e) => resolve(e ?? now())));
}

function stopSignalOf(dir: string): string | undefined {
  try {
    const c = JSON.parse(readFileSync(join(dir, 'image-config.json'), 'utf8')) as ImageConfig;
    return c.config?.StopSignal;
  } catch { return undefined; }
}
