/**
 * Exponential backoff: each delay doubles from `startMs` up to `maxMs`, and starts over once the
 * thing that failed ran for `stableMs` (docker's restart rule: 100 ms doubling to 1 min, reset
 * after a 10 s run; client-go's per-item rate limiter is the same shape without the reset).
 * A value, not a timer: whoever waits does so on its Clock.
 */
export interface BackoffOptions {
  startMs: number;
  maxMs: number;
  /** A run at least this long counts as a success: the next delay is startMs again. */
  stableMs?: number;
}

/**
 * The rule itself, for a caller that keeps the last delay elsewhere (the engine keeps it in the
 * container's record, so a restarted daemon goes on from it): the delay after `prevMs` (0: none
 * yet), given how long the last run lasted.
 */
export function nextDelay(opts: BackoffOptions, prevMs: number, ranMs = 0): number {
  const stable = opts.stableMs !== undefined && ranMs >= opts.stableMs;
  return prevMs <= 0 || stable ? opts.startMs : Math.min(prevMs * 2, opts.maxMs);
}

export class Backoff {
  readonly opts: BackoffOptions;
  private last = 0;

  constructor(opts: BackoffOptions) {
    if (!(opts.startMs > 0) || !(opts.maxMs >= opts.startMs)) throw new RangeError(`backoff: need 0 < startMs <= maxMs, got ${opts.startMs}, ${opts.maxMs}`);
    this.opts = opts;
  }

  /** The delay before the next try, given how long the last run lasted (omit when unknown). */
  next(ranMs = 0): number {
    this.last = nextDelay(this.opts, this.last, ranMs);
    return this.last;
  }

  /** The delay next() returned last (0 before the first call or after reset()). */
  get current(): number {
    return this.last;
  }

  reset(): void {
    this.last = 0;
  }
}
