/** Plan for `exec`: a new process in the namespaces and cgroups of a running container. */
import { PierError } from '../../common/errors.ts';
import type { Process } from '../spec.ts';
import { setnsOps } from './create.ts';
import { op, type PlanOp } from './ops.ts';
import { processOps, type CapMasks, type ResolvedRlimit, type SeccompProgram } from './process.ts';

export interface ExecPlanInput {
  pid: number;                               // the container's init, for messages
  process: Process;
  nsPaths: { type: string; path: string }[]; // already filtered to what the container has
  cgroupProcs: string[];
  consoleSocket?: string;                    // '-' = relay (wait mode only)
  preserveFds: number;
  seccomp?: SeccompProgram;
  capMasks: CapMasks;
  rlimits: ResolvedRlimit[];
  mode: 'detach' | 'wait';
}

export function buildExecPlan(input: ExecPlanInput): PlanOp[] {
  const p = input.process;
  if (p.terminal && !input.consoleSocket) throw new PierError('process.terminal is true but no console socket was given');
  if (input.consoleSocket === '-' && input.mode !== 'wait') throw new PierError('a terminal without --console-socket needs wait mode');
  if (input.nsPaths.length === 0) throw new PierError(`exec into pid ${input.pid}: no namespaces to join`);
  const ops: PlanOp[] = [];
  // connect while host paths still resolve: SETNS mnt changes our root
  if (p.terminal && input.consoleSocket) ops.push(op('CONSOLE_CONNECT', input.consoleSocket));
  for (const c of input.cgroupProcs) ops.push(op('CGROUP_PROCS', c));
  ops.push(...setnsOps(input.nsPaths), op('CLONE', 0, input.mode), op('SETSID'));
  if (p.terminal) ops.push(op('CONSOLE_SETUP', '/dev/ptmx', p.consoleSize?.height ?? 0, p.consoleSize?.width ?? 0, ''));
  if (p.oomScoreAdj !== undefined) ops.push(op('WRITE', '/proc/self/oom_score_adj', String(p.oomScoreAdj)));
  ops.push(...processOps({ process: p, seccomp: input.seccomp, capMasks: input.capMasks, rlimits: input.rlimits,
    preserveFds: input.preserveFds }));
  return ops;
}
