/**
 * exit: the end of a run as the shim reports it. The watcher follows the shim; the exit is
 * recorded under the container's lock (the network torn down, the exit code kept) and what comes
 * next — a restart after a delay, removal for --rm, nothing — is written into the record as
 * desired state for the restart manager (reconcile.ts) to carry out. The exit itself never starts
 * or removes anything: a daemon killed between the two finds the same record and does the same.
 */
import { join } from 'node:path';
import { messageOf } from '../../../common/errors.ts';
import type { ExitStatus } from '../../shim/index.ts';
import type { ContainerInfo, ExitInfo } from '../../api.ts';
import { nextBackoff, shouldRestart } from '../restart.ts';
import { hasProcess } from '../state.ts';
import { eventOf, stamp, trace, type ContainerContext } from './context.ts';
import { refreshHosts } from './hosts.ts';

/** Shim alive but not answering: ask again after this long. */
const RETRY_MS = 200;

/** Follow a running container's shim until it reports the exit (one watcher per container). */
export function watch(ctx: ContainerContext, id: string): void {
  const l = ctx.live.of(id);
  if (l.watching) return;
  const me = {};
  l.watching = me;
  void (async () => {
    try {
      for (;;) {
        const rec = ctx.records.find(id);
        if (!rec || !hasProcess(rec.state.status)) return;
        const r = await ctx.host.shims.wait({ socket: rec.shimSocket, exitFile: exitFileOf(ctx, id), shimPid: rec.state.shimPid });
        if (ctx.closed()) return;
        if (r.kind === 'retry') { await ctx.host.clock.sleep(RETRY_MS); continue; }
        const startedAt = rec.state.startedAt;
        // this watcher is done before the exit is recorded: the next run gets a watcher of its own
        l.watching = undefined;
        await ctx.records.lock(id, () => exitedHeld(ctx, id, r.kind === 'exit' ? r.status : undefined, startedAt));
        return;
      }
    } finally {
      if (l.watching === me) l.watching = undefined;
    }
  })().catch((err) => ctx.log.error(`watching ${id}: ${messageOf(err)}`));
}

export function exitFileOf(ctx: ContainerContext, id: string): string {
  return join(ctx.records.dirOf(id), 'exit.json');
}

/**
 * Record the end of a run (status undefined: its shim vanished without a report). `run`: the
 * start time of the run that ended — an exit reported for an older run is ignored.
 */
export async function exitedHeld(ctx: ContainerContext, id: string, status: ExitStatus | undefined, run?: string): Promise<void> {
  const rec = ctx.records.find(id);
  if (!rec || !hasProcess(rec.state.status)) return;
  if (run !== undefined && rec.state.startedAt !== run) return;
  if (!status) {
    await ctx.host.driver(rec).forceDelete(id).catch(() => undefined);
    status = { exitCode: 255, oomKilled: false, startedAt: rec.state.startedAt ?? '', finishedAt: new Date(ctx.host.clock.now()).toISOString(), error: 'the container monitor (shim) was lost' };
  }
  const t = stamp();
  await ctx.host.networks.teardown(id).catch((err) => ctx.log.warn(`network teardown of ${id}: ${messageOf(err)}`));
  trace(ctx, id, 'network teardown', t());
  const st = status;
  const saved = await ctx.records.updateHeld(id, (d) => afterExit(d, st, ctx.host.clock.now()));
  refreshHosts(ctx, saved.network.networks);
  const info: ExitInfo = { exitCode: st.exitCode, oomKilled: st.oomKilled, ...(st.signal ? { signal: st.signal } : {}), ...(st.error ? { error: st.error } : {}) };
  ctx.emit(eventOf('die', saved, { exitCode: st.exitCode }));
  const l = ctx.live.of(id);
  l.lastExit = info;
  // --rm: the waiters learn of the exit once the container is gone (as `docker run --rm` returns
  // after the removal); the removal is the restart manager's
  if (!saved.config.autoRemove) ctx.live.settle(id, info);
  ctx.reconcile(id);
}

/**
 * The record after a run ended: exited, or restarting with the time of the next start (docker's
 * policies and delays, restart.ts). Pure, so the table of outcomes is unit-tested on its own.
 */
export function afterExit(d: ContainerInfo, status: ExitStatus, now: number): void {
  const startedAt = Date.parse(d.state.startedAt ?? status.finishedAt);
  const ran = Date.parse(status.finishedAt) - startedAt;
  d.state = {
    ...d.state,
    status: 'exited',
    pid: 0,
    shimPid: 0,
    exitCode: status.exitCode,
    oomKilled: status.oomKilled,
    finishedAt: status.finishedAt,
    ...(status.error ? { error: status.error } : {}),
  };
  d.network.ips = {};
  d.network.ports = d.config.ports ?? [];
  if (!d.config.autoRemove && shouldRestart(d.config.restart, d.state, status.exitCode)) {
    const delay = nextBackoff(d.state.restartDelayMs ?? 0, Number.isFinite(ran) ? ran : 0);
    d.state.status = 'restarting';
    d.state.restartDelayMs = delay;
    d.state.restartAt = now + delay;
  }
}
