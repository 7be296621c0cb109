/**
 * An informer (client-go's shared informer, reduced to one process): it lists a collection, then
 * watches it from the list's resourceVersion, keeps a read-only cache (store.ts: frozen objects,
 * handed out as they are, never copied per read) and tells handlers what changed.
 *
 * Level-correct across gaps. A watch that ends normally is resumed from the last version seen, so
 * the server replays what happened meanwhile. A watch that answers 410 Gone (that version was
 * compacted away), a thrown error or any other ERROR event makes it list again, and the new list is
 * compared with the cache: handlers get an add for what is new, an update for what changed, and a
 * delete (finalStateUnknown: true) for what vanished while nobody was watching. An object deleted
 * and made again under the same name in the gap (a new uid) is a delete then an add.
 *
 * Resync (optional period, on the injected Clock) re-delivers every cached object as an update with
 * old === new, so a controller that dropped something re-reads it; watch traffic is unchanged.
 *
 * Failing lists and watches that die without delivering anything wait a backoff on the Clock
 * (client-go's reflector: 800 ms doubling to 30 s, reset after 2 min of stable running), so a broken
 * server is not hammered and tests drive the waits with a fake clock.
 */
import { Backoff, type BackoffOptions } from '../../common/backoff.ts';
import { realClock, type Clock, type Timer } from '../../common/clock.ts';
import { Store, frozenCopy, type IndexFunc, type Lister } from './store.ts';
import { GONE, isGone, keyOf, type Frozen, type KObject, type ListWatch, type StatusObject, type WatchEvent } from './types.ts';

export interface EventHandler<T extends KObject> {
  onAdd?(obj: Frozen<T>): void;
  /** old === new on a resync (compare resourceVersions to tell a resync from a change). */
  onUpdate?(oldObj: Frozen<T>, newObj: Frozen<T>): void;
  /** finalStateUnknown: the deletion was inferred by a relist, obj is the last state the cache had. */
  onDelete?(obj: Frozen<T>, finalStateUnknown: boolean): void;
}

export interface InformerOptions<T extends KObject> {
  listWatch: ListWatch<T>;
  clock?: Clock;
  /** Re-deliver the whole cache every this many ms; 0 or absent: never. */
  resyncMs?: number;
  /** Extra indexes by name (a 'namespace' index is always there). */
  indexers?: Record<string, IndexFunc<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  /** Waits between failed attempts; default 800 ms doubling to 30 s, reset after 2 min of running. */
  retry?: BackoffOptions;
  /** Told of list/watch failures and of handlers that threw (the informer carries on). */
  onError?: (err: unknown) => void;
}

/** An ERROR event other than 410, as the error the informer reports. */
export class WatchStatusError extends Error {
  readonly status: StatusObject;
  constructor(status: StatusObject) {
    super(`watch: ${status.code} ${status.reason ?? ''}${status.message ? `: ${status.message}` : ''}`.trim());
    this.name = 'WatchStatusError';
    this.status = status;
  }
}

type WatchOutcome = { gone: boolean; events: number };

export class Informer<T extends KObject = KObject> implements Lister<T> {
  private readonly lw: ListWatch<T>;
  private readonly clock: Clock;
  private readonly resyncMs: number;
  private readonly selectors: { labelSelector?: string; fieldSelector?: string };
  private readonly retry: BackoffOptions;
  private readonly onError: (err: unknown) => void;
  private readonly cache: Store<T>;
  private readonly handlers = new Set<EventHandler<T>>();
  private readonly abort = new AbortController();
  private syncWaiters: ((ok: boolean) => void)[] = [];
  private synced = false;
  private stopped = false;
  private loop?: Promise<void>;
  private resyncTimer?: Timer;
  /** The version the next watch starts after: the last list's, then each event's. */
  private rv = '';

  constructor(opts: InformerOptions<T>) {
    this.lw = opts.listWatch;
    this.clock = opts.clock ?? realClock;
    this.resyncMs = opts.resyncMs ?? 0;
    this.selectors = { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector };
    this.retry = opts.retry ?? { startMs: 800, maxMs: 30_000, stableMs: 120_000 };
    this.onError = opts.onError ?? (() => undefined);
    this.cache = new Store<T>(opts.indexers);
  }

  /** Begin listing and watching (again calls do nothing; a stopped informer stays stopped). */
  start(): void {
    if (this.loop || this.stopped) return;
    this.loop = this.run();
  }

  /** Stop watching and resyncing; resolves once the list/watch loop has returned. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.resyncTimer?.cancel();
    for (const w of this.syncWaiters.splice(0)) w(false);
    await this.loop;
  }

  /** The first list has been put in the cache. */
  hasSynced(): boolean {
    return this.synced;
  }

  /** true once synced; false if the informer is stopped first. */
  waitForSync(): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /**
   * Add a handler; returns its removal. One added after the sync is first told of every cached
   * object as an add (a shared informer's late joiner sees the same world as an early one).
   */
  addEventHandler(h: EventHandler<T>): () => void {
    this.handlers.add(h);
    if (this.synced) for (const obj of this.cache.list()) this.call(() => h.onAdd?.(obj));
    return () => { this.handlers.delete(h); };
  }

  /** The version of the last list or event applied (what the next watch starts after). */
  get resourceVersion(): string {
    return this.rv;
  }

  get size(): number { return this.cache.size; }
  get(key: string): Frozen<T> | undefined { return this.cache.get(key); }
  list(): Frozen<T>[] { return this.cache.list(); }
  keys(): string[] { return this.cache.keys(); }
  byIndex(name: string, value: string): Frozen<T>[] { return this.cache.byIndex(name, value); }

  private async run(): Promise<void> {
    const backoff = new Backoff(this.retry);
    let needList = true;
    while (!this.stopped) {
      const began = this.clock.now();
      let quiet: boolean;
      try {
        if (needList) {
          const { items, resourceVersion } = await this.lw.list({ ...this.selectors, signal: this.abort.signal });
          if (this.stopped) break;
          this.replace(items);
          this.rv = resourceVersion;
          needList = false;
          this.markSynced();
        }
        const w = await this.watch();
        if (w.gone) needList = true;
        // A watch that delivered something made progress: go on at once. One that ended or was
        // Gone with nothing to show waits, or a server that always does so would spin us.
        quiet = w.events === 0;
      } catch (err) {
        if (this.stopped) break;
        needList = true;
        quiet = true;
        if (!isGone(err)) this.report(err);
      }
      if (this.stopped) break;
      if (!quiet) backoff.reset();
      else await this.clock.sleep(backoff.next(this.clock.now() - began), this.abort.signal).catch(() => undefined);
    }
  }

  /** One watch from this.rv until it ends, is Gone, or throws. */
  private async watch(): Promise<WatchOutcome> {
    let events = 0;
    const stream = this.lw.watch({ ...this.selectors, resourceVersion: this.rv, signal: this.abort.signal });
    for await (const ev of stream) {
      if (this.stopped) break;
      if (ev.type === 'ERROR') {
        if (ev.object.code === GONE) return { gone: true, events };
        throw new WatchStatusError(ev.object);
      }
      events++;
      this.apply(ev);
    }
    return { gone: false, events };
  }

  private apply(ev: Exclude<WatchEvent<T>, { type: 'ERROR' }>): void {
    const obj = ev.object;
    if (obj.metadata.resourceVersion) this.rv = obj.metadata.resourceVersion;
    if (ev.type === 'BOOKMARK') return;
    if (ev.type === 'DELETED') {
      // A delete of something never seen (it came and went inside the gap) changes nothing.
      if (!this.cache.remove(keyOf(obj))) return;
      const last = frozenCopy(obj) as Frozen<T>;
      this.notify((h) => h.onDelete?.(last, false));
      return;
    }
    // ADDED of a known key or MODIFIED of an unknown one: the cache decides which it is.
    const { now, old } = this.cache.upsert(obj);
    if (old) this.notify((h) => h.onUpdate?.(old, now));
    else this.notify((h) => h.onAdd?.(now));
  }

  /** Make the cache the list, telling handlers only the differences. */
  private replace(items: T[]): void {
    const listed = new Set<string>();
    for (const item of items) {
      const key = keyOf(item);
      listed.add(key);
      const prev = this.cache.get(key);
      if (prev && prev.metadata.resourceVersion === item.metadata.resourceVersion && prev.metadata.uid === item.metadata.uid) continue;
      if (prev && prev.metadata.uid !== item.metadata.uid) {
        this.cache.remove(key);
        this.notify((h) => h.onDelete?.(prev, true));
      }
      const { now, old } = this.cache.upsert(item);
      if (old) this.notify((h) => h.onUpdate?.(old, now));
      else this.notify((h) => h.onAdd?.(now));
    }
    for (const key of this.cache.keys()) {
      if (listed.has(key)) continue;
      const gone = this.cache.remove(key)!;
      this.notify((h) => h.onDelete?.(gone, true));
    }
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const w of this.syncWaiters.splice(0)) w(true);
    this.armResync();
  }

  private armResync(): void {
    if (!(this.resyncMs > 0) || this.stopped) return;
    this.resyncTimer = this.clock.setTimeout(() => {
      if (this.stopped) return;
      for (const obj of this.cache.list()) this.notify((h) => h.onUpdate?.(obj, obj));
      this.armResync();
    }, this.resyncMs);
  }

  private notify(fn: (h: EventHandler<T>) => void): void {
    for (const h of this.handlers) this.call(() => fn(h));
  }

  /** A handler's exception is reported, never allowed to stop the informer. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.report(err);
    }
  }

  private report(err: unknown): void {
    try { this.onError(err); } catch { /* a reporter's failure has nobody left to tell */ }
  }
}
