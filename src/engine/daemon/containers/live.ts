/**
 * What the daemon keeps of a container in memory only, beside its record: who waits for its next
 * exit, which streams still read this run's log, and a signal that its removal aborts. None of it
 * is state to be reconciled (a daemon that restarts has no waiters): it is the plumbing between a
 * run's end and the requests that watch it.
 */
import type { ExitInfo } from '../../api.ts';

export interface Live {
  /** Called with the next exit; with undefined when the container is removed without one. */
  waiters: ((e: ExitInfo | undefined) => void)[];
  /** Streams still reading this run's log: --rm waits for them before deleting it. */
  readers: Set<Promise<void>>;
  /** Aborted when the container is removed: log followers and attached streams end then. */
  gone: AbortController;
  /** The watcher following the container's monitor, if one does (one per run). */
  watching?: object;
  /** The exit of the last run, kept for waiters a --rm removal settles. */
  lastExit?: ExitInfo;
}

export class LiveTable {
  private byId = new Map<string, Live>();

  of(id: string): Live {
    let l = this.byId.get(id);
    if (!l) this.byId.set(id, (l = { waiters: [], readers: new Set(), gone: new AbortController() }));
    return l;
  }

  get(id: string): Live | undefined {
    return this.byId.get(id);
  }

  /** Settle what waits on a run's end (info undefined: the container went without one). */
  settle(id: string, info: ExitInfo | undefined): void {
    const l = this.byId.get(id);
    if (!l) return;
    for (const w of l.waiters.splice(0)) w(info);
  }

  /** The container is gone: followers end, waiters learn of it (with its last exit, if any). */
  drop(id: string): void {
    const l = this.byId.get(id);
    this.byId.delete(id);
    if (!l) return;
    l.gone.abort();
    for (const w of l.waiters.splice(0)) w(l.lastExit);
  }

  get size(): number {
    return this.byId.size;
  }
}
