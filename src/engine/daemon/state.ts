/**
 * A container's lifecycle as one table: which status may follow which. Every write of a record
 * (store.ts, ContainerRecords.update) checks its change against this table and the record's
 * invariants, so no code path — a start racing a removal, an exit racing a stop — can leave a
 * record in a shape the engine has no rule for. containerd keeps the same table for its tasks
 * (runtime/v2 process states); docker spreads it over container/state.go.
 */
import type { ContainerInfo, ContainerStatus } from '../api.ts';
import { ApiError } from './errors.ts';

export const STATUSES: readonly ContainerStatus[] = ['created', 'running', 'paused', 'restarting', 'exited', 'removing', 'dead'];

/**
 * from → the statuses it may become. A status may always stay what it is (a write of other fields:
 * health, restart count, an error). `removing` ends in the record's deletion, not in a status.
 */
export const TRANSITIONS: Readonly<Record<ContainerStatus, readonly ContainerStatus[]>> = {
  // start; rm
  created: ['running', 'removing'],
  // pause; the exit observed (policy says stay down, or restart later)
  running: ['paused', 'exited', 'restarting'],
  // unpause; the exit observed while frozen (SIGKILL of a paused container)
  paused: ['running', 'exited', 'restarting'],
  // the delayed start ran; a stop, a failed start, or a daemon that gave up
  restarting: ['running', 'exited'],
  // start again; rm; the daemon's restart-at-start of `always` goes through start
  exited: ['running', 'removing'],
  // a crash during removal resumes the removal at daemon start
  removing: [],
  // only removal is left
  dead: ['removing'],
};

export function canTransition(from: ContainerStatus, to: ContainerStatus): boolean {
  return from === to || TRANSITIONS[from].includes(to);
}

/** A status is "up": it has (or is about to have) a process. */
export function isActive(s: ContainerStatus): boolean {
  return s === 'running' || s === 'paused' || s === 'restarting';
}

/** Has a live process now. */
export function hasProcess(s: ContainerStatus): boolean {
  return s === 'running' || s === 'paused';
}

/**
 * What must hold of a record in each status. A violation is the engine's bug, not the user's: it
 * is refused (500) instead of written.
 */
export function recordProblems(rec: ContainerInfo): string[] {
  const out: string[] = [];
  const s = rec.state;
  if (!STATUSES.includes(s.status)) out.push(`unknown status ${JSON.stringify(s.status)}`);
  if (hasProcess(s.status)) {
    if (!(s.pid > 0)) out.push(`${s.status} without a pid`);
    if (!(s.shimPid > 0)) out.push(`${s.status} without a shim pid`);
    if (!s.startedAt) out.push(`${s.status} without a start time`);
  } else if (s.pid !== 0 || s.shimPid !== 0) {
    out.push(`${s.status} with a pid (${s.pid}/${s.shimPid})`);
  }
  if (s.status === 'restarting' && s.restartAt === undefined) out.push('restarting without a restart time');
  if (!(s.restartCount >= 0)) out.push('negative restart count');
  if (!(rec.revision >= 1)) out.push('no revision');
  return out;
}

/**
 * The check every write runs: the transition is in the table and the new record is whole.
 * An illegal transition is a 409 (the caller lost a race it should have checked for); a broken
 * record is a 500.
 */
export function checkChange(before: ContainerInfo | undefined, after: ContainerInfo): void {
  if (before && !canTransition(before.state.status, after.state.status)) {
    throw new ApiError(409, `container ${after.name}: cannot go from ${before.state.status} to ${after.state.status}`);
  }
  if (!before && after.state.status !== 'created') {
    throw new ApiError(500, `container ${after.name}: a new record must be created, not ${after.state.status}`);
  }
  const problems = recordProblems(after);
  if (problems.length) throw new ApiError(500, `container ${after.name}: refusing to write a broken record: ${problems.join('; ')}`);
}
