/**
 * Restart policies, docker's rules: `no`; `on-failure[:N]` (non-zero exit, at most N restarts);
 * `always`; `unless-stopped`. A container a user stopped is not restarted by on-failure,
 * unless-stopped or always (always brings it back when the daemon restarts). Delays double from
 * 100 ms up to 1 min and start over once a run lasted 10 s.
 */
import { PierError } from '../../common/errors.ts';
import { nextDelay } from '../../common/backoff.ts';
import type { ContainerState, RestartPolicy } from '../api.ts';

export const BACKOFF_START_MS = 100;
export const BACKOFF_MAX_MS = 60_000;
export const STABLE_RUN_MS = 10_000;

export function parseRestartPolicy(s: string): RestartPolicy {
  const [name, max, extra] = s.split(':');
  if (extra !== undefined) throw new PierError(`invalid restart policy ${JSON.stringify(s)}`);
  if (name === 'no' || name === 'always' || name === 'unless-stopped') {
    if (max !== undefined) throw new PierError(`invalid restart policy ${JSON.stringify(s)}: only on-failure takes a maximum retry count`);
    return { name };
  }
  if (name === 'on-failure') {
    if (max === undefined) return { name };
    if (!/^\d+$/.test(max)) throw new PierError(`invalid restart policy ${JSON.stringify(s)}: the retry count must be a non-negative integer`);
    return { name, maxRetries: Number(max) };
  }
  throw new PierError(`invalid restart policy ${JSON.stringify(s)}: use no, on-failure[:N], always or unless-stopped`);
}

/** Restart after this exit (the daemon is running; not the daemon-start case)? */
export function shouldRestart(policy: RestartPolicy | undefined, state: ContainerState, exitCode: number): boolean {
  if (!policy || policy.name === 'no' || state.manuallyStopped) return false;
  if (policy.name === 'on-failure') return exitCode !== 0 && (policy.maxRetries === undefined || policy.maxRetries === 0 || state.restartCount < policy.maxRetries);
  return true;
}

/** Restart a stopped container when the daemon starts? */
export function restartOnDaemonStart(policy: RestartPolicy | undefined, state: ContainerState): boolean {
  if (!policy) return false;
  if (policy.name === 'always') return true;
  return policy.name === 'unless-stopped' && !state.manuallyStopped;
}

/** Next delay: doubled, capped; back to the start after a run long enough to count as stable. */
export function nextBackoff(prevMs: number, ranMs: number): number {
  return nextDelay({ startMs: BACKOFF_START_MS, maxMs: BACKOFF_MAX_MS, stableMs: STABLE_RUN_MS }, prevMs, ranMs);
}
