/**
 * An in-memory ListWatch (src/cluster/controller/types.ts) for controller-framework tests: one
 * collection with a global revision as resourceVersion (kine's row id), a history watches replay
 * from, and the failures an informer must survive — compaction (a watch from an older version
 * answers 410 Gone), open watches expired (ERROR 410), dropped (the stream ends, or throws), and
 * failing lists. Tests write through create/update/remove; every object in and out is a copy, so
 * neither side can reach into the other's.
 */
import type { KObject, ListOptions, ListResult, ListWatch, WatchEvent, WatchOptions } from '../../src/cluster/controller/types.ts';
import { keyOf } from '../../src/cluster/controller/types.ts';

type Change<T extends KObject> = { rev: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T };

/** One open watch's undelivered events. */
class Channel<T extends KObject> {
  private items: WatchEvent<T>[] = [];
  private ended = false;
  private error?: Error;
  private wake?: () => void;

  push(ev: WatchEvent<T>): void {
    if (this.ended) return;
    this.items.push(ev);
    this.wake?.();
  }

  end(err?: Error): void {
    this.ended = true;
    this.error = err;
    this.wake?.();
  }

  /** The next event; undefined once ended (after what was queued) or aborted; throws a drop's error. */
  async next(signal: AbortSignal): Promise<WatchEvent<T> | undefined> {
    for (;;) {
      if (signal.aborted) return undefined;
      const ev = this.items.shift();
      if (ev) return ev;
      if (this.ended) {
        if (this.error) throw this.error;
        return undefined;
      }
      await new Promise<void>((resolve) => {
        const done = () => { signal.removeEventListener('abort', done); this.wake = undefined; resolve(); };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}

export class FakeListWatch<T extends KObject = KObject> implements ListWatch<T> {
  private rev = 0;
  private objects = new Map<string, T>();
  private history: Change<T>[] = [];
  /** Versions below this are gone: a watch from one answers 410. */
  private compactedRev = 0;
  private channels = new Set<Channel<T>>();
  private listFailures: Error[] = [];
  private uids = 0;
  /** Every list call's resourceVersion answer, and every watch's starting version, in order. */
  readonly lists: string[] = [];
  readonly watches: string[] = [];

  /** The current global revision. */
  get revision(): string {
    return String(this.rev);
  }

  /** Watches being served now. */
  get openWatches(): number {
    return this.channels.size;
  }

  get(key: string): T | undefined {
    const o = this.objects.get(key);
    return o && structuredClone(o);
  }

  create(obj: T): T {
    const key = keyOf(obj);
    if (this.objects.has(key)) throw new Error(`fake: ${key} already exists`);
    const o = structuredClone(obj);
    o.metadata.uid ??= `uid-${++this.uids}`;
    o.metadata.generation = 1;
    return this.commit('ADDED', key, o);
  }

  /** Replace an object (a stale resourceVersion, when given, is a conflict as on a real server). */
  update(obj: T): T {
    const key = keyOf(obj);
    const cur = this.objects.get(key);
    if (!cur) throw new Error(`fake: ${key} not found`);
    if (obj.metadata.resourceVersion !== undefined && obj.metadata.resourceVersion !== cur.metadata.resourceVersion) {
      throw new Error(`fake: conflict on ${key}: ${obj.metadata.resourceVersion} is not ${cur.metadata.resourceVersion}`);
    }
    const o = structuredClone(obj);
    o.metadata.uid = cur.metadata.uid;
    const specOf = (x: T) => JSON.stringify((x as { spec?: unknown }).spec ?? null);
    o.metadata.generation = (cur.metadata.generation ?? 1) + (specOf(o) === specOf(cur) ? 0 : 1);
    return this.commit('MODIFIED', key, o);
  }

  /** Change an object in place through fn (read, modify, write). */
  modify(key: string, fn: (o: T) => void): T {
    const o = this.get(key);
    if (!o) throw new Error(`fake: ${key} not found`);
    fn(o);
    return this.update(o);
  }

  remove(key: string): T {
    const cur = this.objects.get(key);
    if (!cur) throw new Error(`fake: ${key} not found`);
    this.objects.delete(key);
    // As on a real server, the DELETED event's object carries the deletion's version.
    return this.commit('DELETED', key, structuredClone(cur));
  }

  /** Forget the history up to now: watches from any earlier version get 410 Gone. */
  compact(): void {
    this.compactedRev = this.rev;
    this.history = [];
  }

  /** Open watches get what they were sent, then ERROR 410 (the server's watch cache fell behind). */
  expireWatches(): void {
    for (const ch of this.channels) {
      ch.push({ type: 'ERROR', object: gone(`watch expired at ${this.rev}`) });
      ch.end();
    }
    this.channels.clear();
  }

  /** Open watches end now, undelivered events lost (a cut connection); with err they throw it. */
  dropWatches(err?: Error): void {
    for (const ch of this.channels) ch.end(err);
    this.channels.clear();
  }

  /** Send open watches a BOOKMARK at the current revision. */
  bookmark(): void {
    for (const ch of this.channels) ch.push({ type: 'BOOKMARK', object: { metadata: { name: '', resourceVersion: this.revision } } as T });
  }

  /** The next list calls throw these, one each. */
  failLists(...errs: Error[]): void {
    this.listFailures.push(...errs);
  }

  async list(_opts: ListOptions): Promise<ListResult<T>> {
    const err = this.listFailures.shift();
    if (err) throw err;
    this.lists.push(this.revision);
    return { items: [...this.objects.values()].map((o) => structuredClone(o)), resourceVersion: this.revision };
  }

  async *watch(opts: WatchOptions): AsyncIterable<WatchEvent<T>> {
    this.watches.push(opts.resourceVersion);
    const from = Number(opts.resourceVersion);
    if (!Number.isInteger(from) || from < 0) throw new Error(`fake: bad resourceVersion ${JSON.stringify(opts.resourceVersion)}`);
    if (from < this.compactedRev) {
      yield { type: 'ERROR', object: gone(`too old resource version: ${from} (${this.compactedRev})`) };
      return;
    }
    const ch = new Channel<T>();
    for (const c of this.history) if (c.rev > from) ch.push({ type: c.type, object: structuredClone(c.object) });
    this.channels.add(ch);
    try {
      for (;;) {
        const ev = await ch.next(opts.signal);
        if (!ev) return;
        yield ev;
      }
    } finally {
      this.channels.delete(ch);
    }
  }

  private commit(type: Change<T>['type'], key: string, o: T): T {
    o.metadata.resourceVersion = String(++this.rev);
    if (type !== 'DELETED') this.objects.set(key, o);
    this.history.push({ rev: this.rev, type, object: structuredClone(o) });
    for (const ch of this.channels) ch.push({ type, object: structuredClone(o) });
    return structuredClone(o);
  }
}

function gone(message: string) {
  return { kind: 'Status' as const, status: 'Failure' as const, code: 410, reason: 'Expired', message };
}
