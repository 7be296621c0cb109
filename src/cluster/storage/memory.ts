/**
 * The in-memory driver: the row log in arrays, for unit tests and for the API server's own tests
 * (kine has none; client-go's fake clientset plays this part). Same semantics as sqlite.ts, checked
 * by the same test suite (test/unit/cluster-storage.test.ts).
 */
import { prefixEnd, type NewRow, type Row, type Rows } from './rows.ts';

export class MemoryRows implements Rows {
  private rows: Row[] = [];
  private byName = new Map<string, Row[]>();
  private next = 1;
  private compacted = 0;

  latest(name: string, at?: number): Row | undefined {
    const list = this.byName.get(name);
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) if (at === undefined || list[i].id <= at) return list[i];
    return undefined;
  }

  insert(row: NewRow): number {
    const r: Row = { ...row, id: this.next++ };
    this.rows.push(r);
    let list = this.byName.get(r.name);
    if (!list) this.byName.set(r.name, (list = []));
    list.push(r);
    return r.id;
  }

  maxId(): number {
    return this.next - 1;
  }

  private names(prefix: string): string[] {
    const end = prefixEnd(prefix);
    return [...this.byName.keys()].filter((n) => n >= prefix && (end === undefined || n < end)).sort();
  }

  listLatest(prefix: string, after: string | undefined, limit: number, at: number): Row[] {
    const out: Row[] = [];
    for (const n of this.names(prefix)) {
      if (after !== undefined && n <= after) continue;
      const r = this.latest(n, at);
      if (!r || r.deleted) continue;
      out.push(r);
      if (limit && out.length >= limit) break;
    }
    return out;
  }

  countLatest(prefix: string): number {
    return this.listLatest(prefix, undefined, 0, this.maxId()).length;
  }

  since(prefix: string, after: number, limit: number): Row[] {
    const end = prefixEnd(prefix);
    const out: Row[] = [];
    // rows are in id order; find the first id > after by binary search
    let lo = 0, hi = this.rows.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.rows[mid].id <= after) lo = mid + 1; else hi = mid; }
    for (let i = lo; i < this.rows.length && out.length < limit; i++) {
      const r = this.rows[i];
      if (r.name >= prefix && (end === undefined || r.name < end)) out.push(r);
    }
    return out;
  }

  compact(revision: number): void {
    // a row before the compaction point goes when a read at that point no longer sees it: a
    // tombstone, or a row a newer one of its key (at or before the point) supersedes
    const keep = (r: Row): boolean => {
      if (r.id >= revision) return true;
      if (r.deleted) return false;
      return this.latest(r.name, revision)!.id === r.id;
    };
    this.rows = this.rows.filter(keep);
    for (const [name, list] of this.byName) {
      const kept = list.filter(keep);
      if (kept.length) this.byName.set(name, kept); else this.byName.delete(name);
    }
  }

  compactRevision(): number {
    return this.compacted;
  }

  setCompactRevision(revision: number): void {
    this.compacted = revision;
  }

  transaction<T>(fn: () => T): T {
    // single-threaded and synchronous: nothing can come between; a throw leaves what fn did undone
    // only if fn throws before inserting, which log.ts guarantees (it checks, then inserts last)
    return fn();
  }

  close(): void {
    this.rows = [];
    this.byName.clear();
  }
}
