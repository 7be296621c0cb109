/** The process part every plan ends with: rlimits, seccomp, caps, user, env, exec (runc order). */
import { PierError } from '../../common/errors.ts';
import type { Hook, Process } from '../spec.ts';
import { op, type PlanOp } from './ops.ts';

export interface CapMasks { bounding: bigint; effective: bigint; permitted: bigint; inheritable: bigint; ambient: bigint }
export interface ResolvedRlimit { resource: number; soft: bigint; hard: bigint }
export interface SeccompProgram { flags: number; program: Uint8Array }

export interface ProcessInput {
  process: Process;
  seccomp?: SeccompProgram;
  capMasks: CapMasks;
  rlimits: ResolvedRlimit[];
  preserveFds: number;
  /** ops between SYNC_READY and the final seccomp/exec: the exec fifo wait and startContainer hooks */
  beforeExec?: PlanOp[];
}

const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;
const rlim = (v: bigint): string => (v < 0n || v >= RLIM_INFINITY ? 'unlimited' : v.toString());

export function hookOp(h: Hook): PlanOp {
  const args = h.args ?? [];
  return op('HOOK', h.path, h.timeout ?? 0, args.length, ...args, ...(h.env ?? []));
}

export function processOps(input: ProcessInput): PlanOp[] {
  const p = input.process;
  const args = p.args ?? [];
  if (args.length === 0) throw new PierError('process.args must not be empty');
  if (!p.cwd || !p.cwd.startsWith('/')) throw new PierError(`process.cwd must be an absolute path, got ${JSON.stringify(p.cwd)}`);
  const nnp = p.noNewPrivileges === true;
  const c = input.capMasks;
  // fds are marked close-on-exec first: a filter loaded below may not allow the syscalls it takes.
  const ops: PlanOp[] = [op('CLOSE_FDS', 3 + input.preserveFds)];
  ops.push(...input.rlimits.map((r) => op('RLIMIT', r.resource, rlim(r.soft), rlim(r.hard))));
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, so it goes before the caps drop.
  if (input.seccomp && !nnp) ops.push(op('SECCOMP', input.seccomp.flags, input.seccomp.program));
  ops.push(
    op('CAPS_BOUNDING', c.bounding),
    op('SETUSER', p.user.uid, p.user.gid, (p.user.additionalGids ?? []).join(',')),
    op('CAPS', c.effective, c.permitted, c.inheritable, c.ambient),
    op('UMASK', (p.user.umask ?? 0o022).toString(8)),
    op('CHDIR', p.cwd),
    ...(p.env ?? []).map((e) => op('ENV', e)),
  );
  if (nnp) ops.push(op('NO_NEW_PRIVS'));
  ops.push(
    op('RESOLVE_EXEC', args[0]),
    op('SYNC_READY'),
    ...(input.beforeExec ?? []),
  );
  // With no_new_privs the filter goes as late as possible, so it need not allow our own setup calls.
  if (input.seccomp && nnp) ops.push(op('SECCOMP', input.seccomp.flags, input.seccomp.program));
  ops.push(op('EXEC', ...args));
  return ops;
}
