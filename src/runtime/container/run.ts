/**
 * run: create + start. Detached, it returns once the container runs. In the foreground the helper
 * stays the init's parent, pier waits for the exit status, forwards the signals it receives to the
 * init and deletes the container afterwards (unless keep is set), as `runc run` does.
 */
import { constants } from 'node:os';
import { messageOf } from '../../common/errors.ts';
import { signalProcess } from '../proc.ts';
import { create, type CreateOptions } from './create.ts';
import { start } from './start.ts';
import { deleteContainer } from './delete.ts';
import { exitStatus } from './security.ts';
import type { RuntimeContext } from './context.ts';

export interface RunOptions extends Omit<CreateOptions, 'mode'> {
  detach?: boolean;
  keep?: boolean;
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const;

export async function run(ctx: RuntimeContext, opts: RunOptions): Promise<number> {
  const { record, helper } = await create(ctx, { ...opts, mode: opts.detach ? 'detach' : 'wait' });
  if (opts.detach) {
    try {
      await start(ctx, opts.id);
    } catch (err) {
      await deleteContainer(ctx, opts.id, true).catch(() => undefined);
      throw err;
    }
    return 0;
  }
  const forward = (sig: NodeJS.Signals) => { signalProcess(record.pid, constants.signals[sig]); };
  for (const s of FORWARDED) process.on(s, forward);
  try {
    await start(ctx, opts.id);
    const { code, signal } = await helper.exit;
    // An init that failed after `ready` (e.g. reopening exec.fifo) said why on the control socket.
    const late = helper.lastError();
    if (late && code !== 0) ctx.log.error(late);
    return exitStatus(code, signal);
  } finally {
    for (const s of FORWARDED) process.off(s, forward);
    if (!opts.keep) {
      await deleteContainer(ctx, opts.id, true).catch((err) => ctx.log.warn(`delete after run: ${messageOf(err)}`));
    }
  }
}
