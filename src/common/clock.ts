/**
 * Time as a dependency. Code that waits (restart backoff, health-check intervals, work-queue
 * delays) takes a Clock instead of calling Date.now/setTimeout, so a test can drive it with a fake
 * one (test/helpers/fake-clock.ts) and check timing without sleeping — kwok's and client-go's
 * clock.Clock do the same for controllers.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Run fn once after ms. Real timers are unref'd: a pending delay never keeps a process alive. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** A promise that settles after ms (or rejects with the signal's reason once it aborts). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  sleep(ms, signal) {
    return sleepOn(realClock, ms, signal);
  },
};

/** sleep() on any clock's setTimeout (the fake clock uses it too). */
export function sleepOn(clock: Pick<Clock, 'setTimeout'>, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const onAbort = () => { timer.cancel(); reject(signal!.reason); };
    const timer = clock.setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
