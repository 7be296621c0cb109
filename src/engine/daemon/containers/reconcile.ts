/**
 * The restart manager: a level-triggered reconciler over a work queue (sample-controller's shape,
 * common/workqueue.ts). It is told only a container's id, reads the record, and makes the world
 * what the record says it should be:
 *   restarting (not stopped by a user) → started once restartAt is due (requeued until then)
 *   exited with --rm                   → removed (after attached readers drained the log)
 *   removing                           → the removal finished (a crash came in the middle)
 *   running/paused with no watcher     → watched (a daemon that restarted takes it over)
 * A missed or doubled notification cannot leave a container wrong: the next look fixes it.
 */
import { messageOf } from '../../../common/errors.ts';
import { WorkQueue } from '../../../common/workqueue.ts';
import { hasProcess } from '../state.ts';
import type { ContainerContext } from './context.ts';
import { removeHeld } from './remove.ts';
import { startHeld } from './start.ts';
import { watch } from './exit.ts';

/** Longest --rm waits for attached clients to read a run's last lines. */
const DRAIN_MS = 5000;

export function restartManager(ctx: ContainerContext): WorkQueue {
  return new WorkQueue({
    clock: ctx.host.clock,
    workers: 4,
    onError: (id, err) => ctx.log.warn(`reconcile ${id.slice(0, 12)}: ${messageOf(err)}`),
    handler: (id) => ctx.records.lock(id, async () => {
      if (ctx.closed()) return;
      const rec = ctx.records.find(id);
      if (!rec) return;
      const st = rec.state.status;
      if (st === 'restarting') {
        if (rec.state.manuallyStopped) {
          await ctx.records.updateHeld(id, (d) => { d.state.status = 'exited'; delete d.state.restartAt; });
          return;
        }
        const wait = (rec.state.restartAt ?? 0) - ctx.host.clock.now();
        if (wait > 0) return { requeueAfter: wait };
        try {
          await startHeld(ctx, id, { restart: true });
        } catch (err) {
          ctx.log.error(`restart of ${rec.name}: ${messageOf(err)}`);
        }
        return;
      }
      if (st === 'exited' && rec.config.autoRemove) {
        const l = ctx.live.get(id);
        if (l?.readers.size) {
          const abort = new AbortController();
          await Promise.race([Promise.all(l.readers), ctx.host.clock.sleep(DRAIN_MS, abort.signal).catch(() => undefined)]);
          abort.abort();
        }
        await removeHeld(ctx, id, { volumes: true });
        return;
      }
      if (st === 'removing') {
        await removeHeld(ctx, id, { volumes: true });
        return;
      }
      if (hasProcess(st)) watch(ctx, id);
    }),
  });
}
