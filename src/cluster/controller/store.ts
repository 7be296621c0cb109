/**
 * The informer's cache: objects by key, plus indexes (client-go's thread-safe store + Indexer,
 * without threads). Every object is copied and deeply frozen when it goes in, and the frozen object
 * is what every reader gets: reads cost nothing, the source of the object (the API client, a test)
 * keeps no alias into the cache, and a reconcile that wants to change an object must start from
 * `structuredClone(obj)` — a write to the cached one throws.
 *
 * Only the informer writes (the mutating methods are not on the `Lister` view it hands out).
 */
import { keyOf, type Frozen, type KObject } from './types.ts';

/** Values an object is filed under in one index (none: it is not in that index). */
export type IndexFunc<T extends KObject> = (obj: Frozen<T>) => readonly string[];

/** The index every store has: by namespace ('' for cluster-scoped objects). */
export const NAMESPACE_INDEX = 'namespace';

/** An index function for "the objects this owner has", by the owners' uids (all owner references). */
export function byOwnerUid<T extends KObject>(obj: Frozen<T>): readonly string[] {
  return (obj.metadata.ownerReferences ?? []).map((r) => r.uid);
}

/** What controllers read: the cache, read-only. */
export interface Lister<T extends KObject> {
  get(key: string): Frozen<T> | undefined;
  list(): Frozen<T>[];
  keys(): string[];
  /** Objects filed under value in the named index; throws on an index that was not declared. */
  byIndex(name: string, value: string): Frozen<T>[];
  readonly size: number;
}

export class Store<T extends KObject> implements Lister<T> {
  private readonly items = new Map<string, Frozen<T>>();
  private readonly funcs = new Map<string, IndexFunc<T>>();
  /** index name → value → keys. */
  private readonly indexes = new Map<string, Map<string, Set<string>>>();

  constructor(indexers: Record<string, IndexFunc<T>> = {}) {
    const all: Record<string, IndexFunc<T>> = { [NAMESPACE_INDEX]: (o) => [o.metadata.namespace ?? ''], ...indexers };
    for (const [name, fn] of Object.entries(all)) {
      this.funcs.set(name, fn);
      this.indexes.set(name, new Map());
    }
  }

  get size(): number {
    return this.items.size;
  }

  get(key: string): Frozen<T> | undefined {
    return this.items.get(key);
  }

  list(): Frozen<T>[] {
    return [...this.items.values()];
  }

  keys(): string[] {
    return [...this.items.keys()];
  }

  byIndex(name: string, value: string): Frozen<T>[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`informer store: no index named ${JSON.stringify(name)}`);
    return [...(index.get(value) ?? [])].map((k) => this.items.get(k)!);
  }

  /** Put a copy of obj in; returns the frozen copy and the object it replaced, if any. */
  upsert(obj: T): { now: Frozen<T>; old?: Frozen<T> } {
    const now = frozenCopy(obj) as Frozen<T>;
    const key = keyOf(now);
    const old = this.items.get(key);
    if (old) this.unindex(key, old);
    this.items.set(key, now);
    this.index(key, now);
    return { now, old };
  }

  /** Take key out; returns what was there. */
  remove(key: string): Frozen<T> | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  private index(key: string, obj: Frozen<T>): void {
    for (const [name, fn] of this.funcs) {
      const index = this.indexes.get(name)!;
      for (const v of new Set(fn(obj))) {
        let keys = index.get(v);
        if (!keys) index.set(v, (keys = new Set()));
        keys.add(key);
      }
    }
  }

  private unindex(key: string, obj: Frozen<T>): void {
    for (const [name, fn] of this.funcs) {
      const index = this.indexes.get(name)!;
      for (const v of fn(obj)) {
        const keys = index.get(v);
        if (!keys) continue;
        keys.delete(key);
        if (keys.size === 0) index.delete(v);
      }
    }
  }
}

/** A deep copy of v, deeply frozen: what the cache holds and hands out. */
export function frozenCopy<V>(v: V): Frozen<V> {
  return freeze(structuredClone(v)) as Frozen<V>;
}

/** Object.freeze all the way down (structuredClone output: plain objects, arrays, no cycles we care about). */
function freeze<V>(v: V): V {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) freeze(child);
  }
  return v;
}
