/**
 * A keyed work queue for level-triggered reconcilers, in client-go's shape: a key queued many times
 * before it is handled is handled once; one key is never handled by two workers at once; a key
 * added while it is being handled is handled again afterwards (so no change is missed); a handler
 * may ask to see its key again later (`{ requeueAfter }`), and one that throws gets it back after
 * a per-key exponential delay that a success forgets. Delays run on an injected Clock, so tests
 * drive them with a fake one.
 *
 * The handler reads the current state each time (it is given only the key): that is what makes it
 * level-triggered — a missed or duplicated notification cannot leave the world wrong.
 */
import { Backoff, type BackoffOptions } from './backoff.ts';
import { realClock, type Clock, type Timer } from './clock.ts';

export type Reconcile = (key: string) => Promise<void | { requeueAfter?: number }> | void | { requeueAfter?: number };

export interface WorkQueueOptions {
  handler: Reconcile;
  /** Keys handled at once (different keys); default 1. */
  workers?: number;
  clock?: Clock;
  /** Delays after a handler throws; default 5 ms doubling to 1000 s (client-go's). */
  retry?: BackoffOptions;
  /** Told of each handler failure (the key is retried regardless). */
  onError?: (key: string, err: unknown) => void;
}

export class WorkQueue {
  private readonly handler: Reconcile;
  private readonly workers: number;
  private readonly clock: Clock;
  private readonly retry: BackoffOptions;
  private readonly onError: (key: string, err: unknown) => void;
  /** Waiting to be handled, in order; `queued` mirrors it for dedupe. */
  private order: string[] = [];
  private queued = new Set<string>();
  private active = new Set<string>();
  /** Added again while active: queue once it is done. */
  private dirty = new Set<string>();
  private timers = new Map<string, { at: number; timer: Timer }>();
  private failures = new Map<string, Backoff>();
  private running = 0;
  /** A pump is queued on a microtask (schedule()). */
  private scheduled = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: WorkQueueOptions) {
    this.handler = opts.handler;
    this.workers = Math.max(1, opts.workers ?? 1);
    this.clock = opts.clock ?? realClock;
    this.retry = opts.retry ?? { startMs: 5, maxMs: 1_000_000 };
    this.onError = opts.onError ?? (() => undefined);
  }

  /** Handle key soon (once, however often it is added before then). */
  add(key: string): void {
    if (this.closed) return;
    if (this.active.has(key)) { this.dirty.add(key); return; }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.order.push(key);
    this.schedule();
  }

  /** Handle key after ms; an earlier pending delay of the same key wins over a later one. */
  addAfter(key: string, ms: number): void {
    if (this.closed) return;
    if (ms <= 0) { this.add(key); return; }
    const at = this.clock.now() + ms;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    pending?.timer.cancel();
    const timer = this.clock.setTimeout(() => {
      if (this.timers.get(key)?.timer === timer) this.timers.delete(key);
      this.add(key);
    }, ms);
    this.timers.set(key, { at, timer });
  }

  /** Handle key after its next retry delay. */
  addRateLimited(key: string): void {
    let b = this.failures.get(key);
    if (!b) this.failures.set(key, (b = new Backoff(this.retry)));
    this.addAfter(key, b.next());
  }

  /** Forget key's failures (its next retry delay starts over) and any pending delay of it. */
  forget(key: string): void {
    this.failures.delete(key);
    this.timers.get(key)?.timer.cancel();
    this.timers.delete(key);
  }

  /** Keys waiting, being handled, or delayed. */
  get length(): number {
    return this.queued.size + this.active.size + this.timers.size;
  }

  has(key: string): boolean {
    return this.queued.has(key) || this.active.has(key) || this.timers.has(key);
  }

  /** Resolves once nothing is queued or being handled (delayed keys do not count). */
  idle(): Promise<void> {
    if (this.order.length === 0 && this.running === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Take no more keys, drop delayed ones, and wait for the handlers running now. */
  async shutdown(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) t.timer.cancel();
    this.timers.clear();
    this.order = [];
    this.queued.clear();
    this.dirty.clear();
    await this.idle();
  }

  /**
   * Handlers start on a later job, never inside add(): the caller finishes the change it is making
   * first, and adds of one tick coalesce.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => { this.scheduled = false; this.pump(); });
  }

  private pump(): void {
    while (this.running < this.workers) {
      const i = this.order.findIndex((k) => !this.active.has(k));
      if (i < 0) break;
      const [key] = this.order.splice(i, 1);
      this.queued.delete(key);
      this.active.add(key);
      this.running++;
      void this.work(key);
    }
    if (this.order.length === 0 && this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private async work(key: string): Promise<void> {
    let again: number | undefined;
    let failed = false;
    try {
      const r = await this.handler(key);
      if (r && typeof r.requeueAfter === 'number') again = r.requeueAfter;
    } catch (err) {
      failed = true;
      try { this.onError(key, err); } catch { /* a reporter's failure is not the handler's */ }
    }
    this.active.delete(key);
    this.running--;
    if (failed) this.addRateLimited(key);
    else {
      this.failures.delete(key);
      if (again !== undefined) this.addAfter(key, again);
    }
    if (this.dirty.delete(key)) this.add(key);
    this.pump();
  }
}
