/** kill: send a signal to the init, or with --all to every process in the container's cgroup. */
import { PierError } from '../../common/errors.ts';
import { parseSignal } from '../signals.ts';
import { signalProcess } from '../proc.ts';
import { cgroupFromRecord } from '../cgroups/index.ts';
import type { RuntimeContext } from './context.ts';

export function kill(ctx: RuntimeContext, id: string, signal: string = 'SIGTERM', all = false): void {
  const sig = parseSignal(signal);
  const rec = ctx.store.load(id);
  const status = ctx.store.status(rec);
  if (status === 'stopped' && !all) throw new PierError('container not running');
  if (all && rec.cgroup) {
    const cg = cgroupFromRecord(rec.cgroup);
    for (const pid of cg.pids()) signalProcess(pid, sig);
    // A frozen task only acts on SIGKILL once thawed; runc thaws after kill --all too.
    if (status === 'paused' && sig === 9) cg.thaw();
    return;
  }
  if (!signalProcess(rec.pid, sig)) throw new PierError('container not running');
}
