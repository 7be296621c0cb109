/**
 * A table of records kept in memory and on disk, with the rules every writer lives by (the class
 * of race that failed CI once: edits outside the lock):
 *  - a record changes only through update()/updateHeld(): under its keyed lock, on a copy, checked
 *    (a state table and invariants, given by the kind), persisted, revision one up;
 *  - what find()/get()/all() hand out are copies: changing one changes nothing; scan() hands out
 *    the records themselves, deeply frozen, for read-only loops (port checks, volume users), so
 *    they do not copy every record on every create.
 * Containers (store.ts) and pods (pods/store.ts) are the two kinds; each says how it is stored.
 */
import { PierError } from '../../common/errors.ts';
import { KeyedMutex } from '../../common/keyed-mutex.ts';
import { ApiError, notFound } from './errors.ts';

export interface Versioned { id: string; name: string; revision: number; created: string }

/** A record as scan() hands it out: nothing in it can be changed. */
export type DeepReadonly<T> = T extends (infer E)[] ? readonly DeepReadonly<E>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

export abstract class RecordTable<T extends Versioned> {
  protected byId = new Map<string, T>();
  private mutex = new KeyedMutex();
  /** "container", "pod": in messages and lock keys. */
  protected abstract readonly kind: string;
  /** The state table and invariants: throws (409 or 500) to refuse a change. */
  protected abstract check(before: T | undefined, after: T): void;
  /** Write the record where it lives (atomically). */
  protected abstract persist(rec: T): void;

  /** Newest first. */
  all(): T[] {
    return this.scan().map((r) => copy(r as T));
  }

  /** Newest first, the records themselves (frozen): for loops that only read. */
  scan(): readonly DeepReadonly<T>[] {
    return [...this.byId.values()].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0)) as unknown as DeepReadonly<T>[];
  }

  /** Hold a record (as read or written): frozen, so what scan() hands out cannot be changed. */
  protected keep(rec: T): void {
    this.byId.set(rec.id, deepFreeze(rec));
  }

  /** By full id, name, or unique id prefix (docker's rules); a copy. */
  find(ref: string): T | undefined {
    const r = this.lookup(ref);
    return r && copy(r);
  }

  get(ref: string): T {
    const c = this.find(ref);
    if (!c) throw notFound(`no such ${this.kind}: ${ref}`);
    return c;
  }

  /** The full id a reference names (404 when none). */
  idOf(ref: string): string {
    const r = this.lookup(ref);
    if (!r) throw notFound(`no such ${this.kind}: ${ref}`);
    return r.id;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  protected lookup(ref: string): T | undefined {
    const exact = this.byId.get(ref);
    if (exact) return exact;
    for (const c of this.byId.values()) if (c.name === ref) return c;
    if (/^[0-9a-f]+$/.test(ref)) {
      const hits = [...this.byId.values()].filter((c) => c.id.startsWith(ref));
      if (hits.length > 1) throw new PierError(`${this.kind} id prefix ${ref} is ambiguous`);
      return hits[0];
    }
    return undefined;
  }

  /** One turn of a record's lock (not re-entrant: inside, use updateHeld). */
  lock<R>(id: string, fn: () => Promise<R> | R): Promise<R> {
    return this.mutex.run(id, fn);
  }

  held(id: string): boolean {
    return this.mutex.held(id);
  }

  /** Keys locked or waited for (leak checks). */
  get lockCount(): number {
    return this.mutex.size;
  }

  /**
   * Change one record: under its lock, fn edits a copy; the change is checked, persisted and
   * becomes the record, revision one up. fn throwing writes nothing. Resolves with a copy.
   */
  update(id: string, fn: (draft: T) => void | Promise<void>): Promise<T> {
    return this.lock(id, () => this.updateHeld(id, fn));
  }

  /** As update(), for a caller already inside the record's lock. */
  async updateHeld(id: string, fn: (draft: T) => void | Promise<void>): Promise<T> {
    this.assertHeld(id);
    const cur = this.byId.get(id);
    if (!cur) throw notFound(`no such ${this.kind}: ${id}`);
    const draft = copy(cur);
    await fn(draft);
    if (draft.id !== cur.id) throw new ApiError(500, `${this.kind} ${cur.name}: an update may not change the id`);
    draft.revision = cur.revision + 1;
    this.check(cur, draft);
    this.persist(draft);
    const out = copy(draft);
    this.keep(draft);
    return out;
  }

  /** A new record at revision 1. */
  protected insertRecord(rec: T): T {
    if (this.byId.has(rec.id)) throw new ApiError(500, `${this.kind} ${rec.id} exists`);
    const r = copy({ ...rec, revision: 1 });
    this.check(undefined, r);
    this.persist(r);
    const out = copy(r);
    this.keep(r);
    return out;
  }

  protected assertHeld(id: string): void {
    if (!this.mutex.held(id)) throw new ApiError(500, `${this.kind} ${id.slice(0, 12)}: record changed outside its lock`);
  }
}

function copy<T>(rec: T): T {
  return structuredClone(rec);
}
