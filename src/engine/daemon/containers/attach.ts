/** Watching a run: its log (logs, run-attached) and its exit (wait). */
import type { ExitInfo, LogEntry, StreamLine } from '../../api.ts';
import { readLogs } from '../../shim/index.ts';
import { ApiError } from '../errors.ts';
import { isActive } from '../state.ts';
import type { ContainerContext } from './context.ts';
import { exitFileOf } from './exit.ts';
import { start } from './start.ts';

export function logs(ctx: ContainerContext, ref: string, opts: { follow?: boolean; tail?: number; since?: Date; until?: Date; signal?: AbortSignal }): AsyncIterable<LogEntry> {
  const rec = ctx.records.get(ref);
  const follow = Boolean(opts.follow && isActive(rec.state.status));
  // a follower ends when the container is removed, as at its exit (the exit file goes with it)
  return readLogs(rec.logPath, { ...opts, follow, ...(follow ? { stop: ctx.live.of(rec.id).gone.signal } : {}), exitFile: exitFileOf(ctx, rec.id) });
}

/** Resolves with the exit of the current run (immediately if nothing runs). */
export function wait(ctx: ContainerContext, ref: string): Promise<ExitInfo> {
  const rec = ctx.records.get(ref);
  if (!isActive(rec.state.status)) {
    return Promise.resolve({ exitCode: rec.state.exitCode ?? 0, oomKilled: rec.state.oomKilled, ...(rec.state.error ? { error: rec.state.error } : {}) });
  }
  return new Promise((resolve, reject) => ctx.live.of(rec.id).waiters.push((e) => (e ? resolve(e) : reject(new ApiError(404, `container ${rec.name} was removed`)))));
}

/**
 * Start a container and yield its output of this run, then its exit (`pier run`, `start -a`).
 * The waiter is registered before the start, so even an instant exit is seen.
 */
export async function* runAttached(ctx: ContainerContext, ref: string, signal: AbortSignal): AsyncGenerator<StreamLine> {
  const rec = ctx.records.get(ref);
  const l = ctx.live.of(rec.id);
  let onExit!: (e: ExitInfo | undefined) => void;
  const exit = new Promise<ExitInfo | undefined>((r) => { onExit = r; });
  l.waiters.push(onExit);
  let done!: () => void;
  const reader = new Promise<void>((r) => { done = r; });
  l.readers.add(reader);
  try {
    const since = new Date();
    try {
      await start(ctx, rec.id);
    } catch (err) {
      l.waiters = l.waiters.filter((w) => w !== onExit);
      throw err;
    }
    yield { progress: 'started' };
    // removal ends the follower too (what the log holds by then is still read): the exit file
    // it would wait for goes with the record
    for await (const entry of readLogs(rec.logPath, { follow: true, since, signal, stop: l.gone.signal, exitFile: exitFileOf(ctx, rec.id) })) {
      yield { entry };
    }
  } finally {
    l.readers.delete(reader);
    done();
  }
  if (signal.aborted) return;
  // removal settles the waiter too: with the exit if it came first, else without one
  const e = await exit;
  yield e ? { exit: e } : { error: `container ${rec.name} was removed` };
}

