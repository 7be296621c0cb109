/**
 * A Clock (src/common/clock.ts) that moves only when a test says so: advance(ms) fires every timer
 * due by then, in due order, letting the promise jobs each one starts run before the next fires.
 */
import { sleepOn, type Clock, type Timer } from '../../src/common/clock.ts';

interface Pending { at: number; seq: number; fn: () => void; cancelled: boolean }

export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const p: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.pending.push(p);
    return { cancel: () => { p.cancelled = true; } };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  /** Timers not yet fired or cancelled, soonest first (their delays from now). */
  timers(): number[] {
    return this.live().map((p) => p.at - this.t);
  }

  /** Move time forward by ms, firing what falls due; settles the jobs they start. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const next = this.live()[0];
      if (!next || next.at > end) break;
      this.t = next.at;
      next.cancelled = true;
      next.fn();
    }
    this.t = end;
    await settle();
  }

  /** Advance to the soonest timer and fire it (and whatever else is due then). */
  async next(): Promise<number> {
    await settle();
    const n = this.live()[0];
    if (!n) return 0;
    const d = n.at - this.t;
    await this.advance(d);
    return d;
  }

  private live(): Pending[] {
    this.pending = this.pending.filter((p) => !p.cancelled);
    return [...this.pending].sort((a, b) => a.at - b.at || a.seq - b.seq);
  }
}

/** Let queued promise jobs and immediates run (a handful of turns covers chains of awaits). */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}
