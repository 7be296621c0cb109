/**
 * remove: a container that is not running goes — sandbox, rootfs, anonymous volumes (with -v),
 * its dir — under its lock. With force, a running one is first marked (no --rm, no restart) and
 * killed outside the lock, since its exit needs the lock; then the loop takes the next turn.
 */
import { rmSync } from 'node:fs';
import { messageOf } from '../../../common/errors.ts';
import type { ContainerInfo } from '../../api.ts';
import { conflict } from '../errors.ts';
import { hasProcess, isActive } from '../state.ts';
import { eventOf, type ContainerContext } from './context.ts';
import { nextExit } from './stop.ts';

export async function remove(ctx: ContainerContext, ref: string, opts: { force?: boolean; volumes?: boolean; podOwned?: boolean } = {}): Promise<void> {
  const id = ctx.records.idOf(ref);
  const first = ctx.records.get(id);
  // the pod's namespaces live in its infra container: it goes with the pod, not alone
  if (first.infra && !opts.podOwned) throw conflict(`container ${first.name} is the infra container of a pod: remove the pod (pier pod rm)`);
  // A start queued before the removal (`run` racing `rm -f`) makes a created container running
  // between two turns: then the next turn finds it running and kills it first.
  for (;;) {
    const running = await ctx.records.lock(id, async () => {
      const cur = ctx.records.find(id);
      if (!cur) return undefined;
      const st = cur.state.status;
      if (!isActive(st)) {
        await removeHeld(ctx, id, opts);
        return undefined;
      }
      if (!opts.force) throw conflict(`container ${cur.name} is ${st}: stop it first or use --force`);
      const rec = await ctx.records.updateHeld(id, (d) => {
        d.config.autoRemove = false;
        d.state.manuallyStopped = true;
        // restarting: nothing runs, and the restart manager sees the stop and stays put
        if (d.state.status === 'restarting') { d.state.status = 'exited'; delete d.state.restartAt; }
      });
      return hasProcess(rec.state.status) ? { rec, exit: nextExit(ctx, rec) } : { rec, exit: Promise.resolve() };
    });
    if (!running) return;
    const drv = ctx.host.driver(running.rec);
    // a frozen container takes the SIGKILL only once thawed (cgroup v1 freezer)
    if (running.rec.state.status === 'paused') await drv.resume(id).catch(() => undefined);
    if (hasProcess(running.rec.state.status)) await drv.kill(id, 'SIGKILL').catch(() => undefined);
    await running.exit;
  }
}

/** Remove a container that runs nothing, inside its lock. */
export async function removeHeld(ctx: ContainerContext, id: string, opts: { volumes?: boolean }): Promise<void> {
  let rec: ContainerInfo = ctx.records.get(id);
  if (rec.state.status !== 'removing') rec = await ctx.records.updateHeld(id, (d) => { d.state.status = 'removing'; });
  await ctx.host.networks.teardown(id).catch(() => undefined);
  await ctx.host.images.removeRootfs(`ctr-${id}`);
  if (opts.volumes) {
    for (const m of rec.mounts) {
      if (m.type === 'volume' && m.anonymous) {
        try { ctx.volumes.remove(m.source, volumeUsers(ctx, m.source, id)); } catch (err) { ctx.log.warn(`volume ${m.source}: ${messageOf(err)}`); }
      }
    }
  }
  rmSync(rec.shimSocket, { force: true });
  ctx.records.delete(id);
  // followers and attached streams end now; waiters learn of the removal (with the exit, if any)
  ctx.live.drop(id);
  ctx.emit(eventOf('destroy', { ...rec, revision: rec.revision + 1 }));
}

export function volumeUsers(ctx: ContainerContext, name: string, except?: string): string[] {
  return ctx.records.scan().filter((c) => c.id !== except && c.mounts.some((m) => m.type === 'volume' && m.source === name)).map((c) => c.name);
}
