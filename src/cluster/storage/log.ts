/**
 * The Backend over a driver's row log (kine's pkg/logstructured + generic, in one small file):
 * create/update/delete append a row under one transaction after checking the key's newest row;
 * reads pick the newest row of each key at a revision; watch replays rows after a revision and then
 * waits — a write in this process wakes it at once, a poll catches writers in other processes
 * (a second control plane on the same SQLite file is not supported, but pier tools may read it).
 */
import { CompactedError, KeyExistsError, type Backend, type KeyValue, type ListOptions, type ListResult, type WatchEvent, type WriteResult } from './types.ts';
import type { Row, Rows } from './rows.ts';

/** Rows a watch reads at a time. */
const WATCH_BATCH = 500;
/** How often a waiting watch looks for rows written by another process. */
const POLL_MS = 1000;

function kvOf(r: Row): KeyValue {
  return { key: r.name, value: r.value, createRevision: r.created ? r.id : r.createRevision, modRevision: r.id };
}

function eventOf(r: Row): WatchEvent {
  const kv = kvOf(r);
  if (r.created) return { type: 'create', kv };
  const prevKv: KeyValue = { key: r.name, value: r.oldValue, createRevision: kv.createRevision, modRevision: r.prevRevision };
  return { type: r.deleted ? 'delete' : 'update', kv, prevKv };
}

export class LogBackend implements Backend {
  private readonly rows: Rows;
  private waiters = new Set<() => void>();
  private closed = false;

  constructor(rows: Rows) {
    this.rows = rows;
  }

  private wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  private checkRevision(rev: number): void {
    const c = this.rows.compactRevision();
    if (rev < c) throw new CompactedError(rev, c);
  }

  async currentRevision(): Promise<number> {
    return this.rows.maxId();
  }

  async get(key: string, opts: { revision?: number } = {}): Promise<{ revision: number; kv?: KeyValue }> {
    const revision = opts.revision || this.rows.maxId();
    if (opts.revision) this.checkRevision(opts.revision);
    const r = this.rows.latest(key, opts.revision || undefined);
    return { revision, ...(r && !r.deleted ? { kv: kvOf(r) } : {}) };
  }

  async create(key: string, value: string): Promise<WriteResult> {
    const row = this.rows.transaction(() => {
      const prev = this.rows.latest(key);
      if (prev && !prev.deleted) throw new KeyExistsError(key);
      const id = this.rows.insert({ name: key, created: true, deleted: false, createRevision: 0, prevRevision: prev?.id ?? 0, value, oldValue: '' });
      return { id, name: key, created: true, deleted: false, createRevision: 0, prevRevision: prev?.id ?? 0, value, oldValue: '' } satisfies Row;
    });
    this.wake();
    return { revision: row.id, ok: true, kv: kvOf(row) };
  }

  async update(key: string, value: string, expected: number): Promise<WriteResult> {
    const r = this.rows.transaction((): WriteResult => {
      const cur = this.rows.latest(key);
      if (!cur || cur.deleted) return { revision: this.rows.maxId(), ok: false };
      if (cur.id !== expected) return { revision: this.rows.maxId(), ok: false, kv: kvOf(cur) };
      const createRevision = cur.created ? cur.id : cur.createRevision;
      const row: Row = { id: 0, name: key, created: false, deleted: false, createRevision, prevRevision: cur.id, value, oldValue: cur.value };
      row.id = this.rows.insert(row);
      return { revision: row.id, ok: true, kv: kvOf(row) };
    });
    if (r.ok) this.wake();
    return r;
  }

  async delete(key: string, expected?: number): Promise<WriteResult> {
    const r = this.rows.transaction((): WriteResult => {
      const cur = this.rows.latest(key);
      if (!cur || cur.deleted) return { revision: this.rows.maxId(), ok: false };
      if (expected !== undefined && cur.id !== expected) return { revision: this.rows.maxId(), ok: false, kv: kvOf(cur) };
      const createRevision = cur.created ? cur.id : cur.createRevision;
      const row: Row = { id: 0, name: key, created: false, deleted: true, createRevision, prevRevision: cur.id, value: cur.value, oldValue: cur.value };
      row.id = this.rows.insert(row);
      // what was deleted, as it was
      return { revision: row.id, ok: true, kv: { ...kvOf(cur) } };
    });
    if (r.ok) this.wake();
    return r;
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    const revision = opts.revision || this.rows.maxId();
    if (opts.revision) this.checkRevision(opts.revision);
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    const rows = this.rows.listLatest(prefix, opts.after, limit ? limit + 1 : 0, revision);
    const more = limit > 0 && rows.length > limit;
    return { revision, kvs: (more ? rows.slice(0, limit) : rows).map(kvOf), more };
  }

  async count(prefix: string): Promise<{ revision: number; count: number }> {
    return { revision: this.rows.maxId(), count: this.rows.countLatest(prefix) };
  }

  async *watch(prefix: string, after: number, signal: AbortSignal): AsyncIterable<WatchEvent[]> {
    // history after `after` must be whole: rows from the compaction point on are all kept
    const c = this.rows.compactRevision();
    if (after + 1 < c) throw new CompactedError(after, c);
    let last = after;
    while (!signal.aborted && !this.closed) {
      const rows = this.rows.since(prefix, last, WATCH_BATCH);
      if (rows.length) {
        last = rows[rows.length - 1].id;
        yield rows.map(eventOf);
        continue;
      }
      // nothing new under the prefix: wait for a write here, or poll for one from elsewhere
      await new Promise<void>((resolve) => {
        const done = () => { clearTimeout(t); signal.removeEventListener('abort', done); this.waiters.delete(done); resolve(); };
        const t = setTimeout(done, POLL_MS);
        t.unref();
        signal.addEventListener('abort', done, { once: true });
        this.waiters.add(done);
      });
    }
  }

  async compact(revision: number): Promise<void> {
    const rev = Math.min(revision, this.rows.maxId());
    if (rev <= this.rows.compactRevision()) return;
    this.rows.transaction(() => {
      this.rows.compact(rev);
      this.rows.setCompactRevision(rev);
    });
  }

  async compactRevision(): Promise<number> {
    return this.rows.compactRevision();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake();
    this.rows.close();
  }
}
