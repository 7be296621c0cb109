/**
 * delete: remove a stopped container (or a created one, like runc); running or paused ones need
 * --force, which kills them first. With --force a missing container is not an error.
 */
import { messageOf, PierError } from '../../common/errors.ts';
import { signalProcess, waitGone } from '../proc.ts';
import { cgroupFromRecord } from '../cgroups/index.ts';
import { runHooks } from '../hooks.ts';
import type { RuntimeContext } from './context.ts';

export async function deleteContainer(ctx: RuntimeContext, id: string, force = false): Promise<void> {
  const rec = ctx.store.tryLoad(id);
  if (!rec) {
    if (force) {
      // Leftovers of an interrupted create: a state dir without a readable state.json.
      ctx.store.remove(id);
      return;
    }
    throw new PierError(`container "${id}" does not exist`);
  }
  const status = ctx.store.status(rec);
  if ((status === 'running' || status === 'paused' || status === 'creating') && !force) {
    throw new PierError(`cannot delete container ${id} that is not stopped: ${status}`);
  }
  const cg = rec.cgroup ? cgroupFromRecord(rec.cgroup) : undefined;
  if (status !== 'stopped') {
    signalProcess(rec.pid, 9);
    if (status === 'paused') cg?.thaw();
    if (!(await waitGone(rec.pid, rec.startTime, 10_000))) throw new PierError(`container ${id} init ${rec.pid} did not die after SIGKILL`);
  }
  cg?.destroy();
  const state = { ...ctx.store.stateOf(rec), status: 'stopped' as const, pid: 0 };
  try {
    await runHooks('poststop', rec.config.hooks?.poststop, state);
  } catch (err) {
    ctx.log.warn(messageOf(err));
  }
  ctx.store.remove(id);
}
