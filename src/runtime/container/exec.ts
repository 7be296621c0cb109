/**
 * exec: start another process inside a running container: join its namespaces and cgroups, apply
 * the process's user, capabilities, rlimits and the container's seccomp profile, then execve.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { PierError } from '../../common/errors.ts';
import { writeFileAtomic } from '../../common/atomic.ts';
import { cgroupFromRecord } from '../cgroups/index.ts';
import { buildExecPlan } from '../plan/index.ts';
import { startHelper } from '../helper/index.ts';
import { signalProcess } from '../proc.ts';
import type { NamespaceType, Process } from '../spec.ts';
import { exitStatus, processSecurity } from './security.ts';
import type { RuntimeContext, Stdio } from './context.ts';

export interface ExecOptions {
  process: Process;
  consoleSocket?: string;
  detach?: boolean;
  pidFile?: string;
  preserveFds?: number;
  stdio?: Stdio;
  /** Called with the host pid once the process exists (foreground exec forwards signals to it). */
  onPid?: (pid: number) => void;
}

const PROC_NS: Record<NamespaceType, string> = {
  user: 'user', mount: 'mnt', pid: 'pid', network: 'net', ipc: 'ipc', uts: 'uts', cgroup: 'cgroup', time: 'time',
};
// user first: joining it grants the rights to join the others; mnt last so paths above stay valid.
const JOIN_ORDER: NamespaceType[] = ['user', 'ipc', 'uts', 'network', 'pid', 'cgroup', 'time', 'mount'];

function nsInode(path: string): number | undefined {
  try { return statSync(path).ino; } catch { return undefined; }
}

/** Returns the exit status (foreground) or the pid (detached). */
export async function exec(ctx: RuntimeContext, id: string, opts: ExecOptions): Promise<{ pid: number; exitCode?: number }> {
  const rec = ctx.store.load(id);
  const status = ctx.store.status(rec);
  if (status === 'stopped') throw new PierError('cannot exec in a stopped container');
  if (status === 'paused') throw new PierError('cannot exec in a paused container');
  const proc = opts.process;
  if (!Array.isArray(proc.args) || proc.args.length === 0) throw new PierError('exec: process args must not be empty');
  if (!proc.cwd || !proc.cwd.startsWith('/')) throw new PierError(`exec: cwd ${JSON.stringify(proc.cwd)} must be an absolute path`);
  let consoleSocket = opts.consoleSocket;
  if (proc.terminal) {
    if (!consoleSocket) {
      if (opts.detach) throw new PierError('exec --tty --detach needs --console-socket');
      consoleSocket = '-';
    }
  } else if (consoleSocket) {
    throw new PierError('--console-socket was given without --tty');
  }
  const security = processSecurity(proc, rec.config.linux?.seccomp);
  const types = new Set((rec.config.linux?.namespaces ?? []).map((n) => n.type));
  const nsPaths: { type: string; path: string }[] = [];
  for (const t of JOIN_ORDER) {
    if (!types.has(t)) continue;
    const path = `/proc/${rec.pid}/ns/${PROC_NS[t]}`;
    // setns into the namespace we are already in fails for user namespaces; skip any shared one.
    if (nsInode(path) === nsInode(`/proc/self/ns/${PROC_NS[t]}`)) continue;
    nsPaths.push({ type: PROC_NS[t], path });
  }
  const preserveFds = opts.preserveFds ?? 0;
  const plan = buildExecPlan({
    pid: rec.pid,
    process: proc,
    nsPaths,
    cgroupProcs: rec.cgroup ? cgroupFromRecord(rec.cgroup).procsFiles() : [],
    consoleSocket: consoleSocket === undefined || consoleSocket === '-' ? consoleSocket : resolve(consoleSocket),
    preserveFds,
    seccomp: security.seccomp,
    capMasks: security.capMasks,
    rlimits: security.rlimits,
    mode: opts.detach ? 'detach' : 'wait',
  });
  const helper = startHelper(plan, { preserveFds, stdio: opts.stdio ?? 'inherit' });
  let pid = 0;
  try {
    pid = await helper.pid;
    opts.onPid?.(pid);
    await helper.ready;
  } catch (err) {
    if (pid > 0) signalProcess(pid, 9);
    helper.kill();
    await helper.exit.catch(() => undefined);
    throw err;
  }
  if (opts.pidFile) writeFileAtomic(resolve(opts.pidFile), String(pid));
  if (opts.detach) return { pid };
  const { code, signal } = await helper.exit;
  return { pid, exitCode: exitStatus(code, signal) };
}
