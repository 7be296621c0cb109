/**
 * The embedded driver: the row log in one SQLite table, as kine keeps it (pkg/drivers/sqlite over
 * pkg/drivers/generic): `id` autoincrement is the revision, indexes on name, (name, id) and
 * (id, deleted). On Node's built-in `node:sqlite` (synchronous, in-process). WAL with
 * synchronous=NORMAL: a write survives the process being killed (-9), not the machine losing
 * power mid-commit — the trade kine and k3s make for an embedded store too.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { prefixEnd, type NewRow, type Row, type Rows } from './rows.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS kine (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  created INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  create_revision INTEGER NOT NULL,
  prev_revision INTEGER NOT NULL,
  value TEXT NOT NULL,
  old_value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name);
CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id);
CREATE INDEX IF NOT EXISTS kine_id_deleted_index ON kine (id, deleted);
CREATE TABLE IF NOT EXISTS kine_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

/** The upper bound for an empty prefix: above every key the API server writes. */
const TOP = '\u{10FFFF}';

interface RawRow { id: number; name: string; created: number; deleted: number; create_revision: number; prev_revision: number; value: string; old_value: string }

function toRow(r: RawRow): Row {
  return { id: Number(r.id), name: r.name, created: r.created === 1, deleted: r.deleted === 1, createRevision: Number(r.create_revision), prevRevision: Number(r.prev_revision), value: r.value, oldValue: r.old_value };
}

export class SqliteRows implements Rows {
  private db: DatabaseSync;
  private q: Record<string, StatementSync>;
  private depth = 0;

  constructor(path: string) {
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    this.db.exec(SCHEMA);
    const latestOf = 'SELECT * FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1';
    this.q = {
      latest: this.db.prepare(latestOf),
      latestAt: this.db.prepare('SELECT * FROM kine WHERE name = ? AND id <= ? ORDER BY id DESC LIMIT 1'),
      insert: this.db.prepare('INSERT INTO kine (name, created, deleted, create_revision, prev_revision, value, old_value) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      maxId: this.db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM kine'),
      list: this.db.prepare(`SELECT k.* FROM kine k JOIN (SELECT MAX(id) AS id FROM kine WHERE name >= ? AND name < ? AND name > ? AND id <= ? GROUP BY name) m ON k.id = m.id WHERE k.deleted = 0 ORDER BY k.name LIMIT ?`),
      count: this.db.prepare(`SELECT COUNT(*) AS n FROM kine k JOIN (SELECT MAX(id) AS id FROM kine WHERE name >= ? AND name < ? GROUP BY name) m ON k.id = m.id WHERE k.deleted = 0`),
      since: this.db.prepare('SELECT * FROM kine WHERE id > ? AND name >= ? AND name < ? ORDER BY id LIMIT ?'),
      // a row before the compaction point goes when a read at that point no longer sees it: a
      // tombstone, or a row a newer one of its key (at or before the point) supersedes
      compactOld: this.db.prepare(`DELETE FROM kine WHERE id < ?1 AND (deleted = 1 OR EXISTS (SELECT 1 FROM kine n WHERE n.name = kine.name AND n.id > kine.id AND n.id <= ?1))`),
      getMeta: this.db.prepare('SELECT value FROM kine_meta WHERE key = ?'),
      setMeta: this.db.prepare('INSERT INTO kine_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    };
  }

  latest(name: string, at?: number): Row | undefined {
    const r = (at === undefined ? this.q.latest.get(name) : this.q.latestAt.get(name, at)) as RawRow | undefined;
    return r && toRow(r);
  }

  insert(row: NewRow): number {
    const res = this.q.insert.run(row.name, row.created ? 1 : 0, row.deleted ? 1 : 0, row.createRevision, row.prevRevision, row.value, row.oldValue);
    return Number(res.lastInsertRowid);
  }

  maxId(): number {
    return Number((this.q.maxId.get() as { id: number }).id);
  }

  listLatest(prefix: string, after: string | undefined, limit: number, at: number): Row[] {
    const rows = this.q.list.all(prefix, prefixEnd(prefix) ?? TOP, after ?? '', at, limit > 0 ? limit : -1) as unknown as RawRow[];
    return rows.map(toRow);
  }

  countLatest(prefix: string): number {
    return Number((this.q.count.get(prefix, prefixEnd(prefix) ?? TOP) as { n: number }).n);
  }

  since(prefix: string, after: number, limit: number): Row[] {
    return (this.q.since.all(after, prefix, prefixEnd(prefix) ?? TOP, limit) as unknown as RawRow[]).map(toRow);
  }

  compact(revision: number): void {
    this.q.compactOld.run(revision);
  }

  compactRevision(): number {
    const r = this.q.getMeta.get('compact_rev') as { value: number } | undefined;
    return r ? Number(r.value) : 0;
  }

  setCompactRevision(revision: number): void {
    this.q.setMeta.run('compact_rev', revision);
  }

  transaction<T>(fn: () => T): T {
    if (this.depth > 0) return fn();
    this.db.exec('BEGIN IMMEDIATE');
    this.depth++;
    try {
      const v = fn();
      this.db.exec('COMMIT');
      return v;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    } finally {
      this.depth--;
    }
  }

  close(): void {
    this.db.close();
  }
}
