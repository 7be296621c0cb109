/**
 * The row log every driver keeps (kine's one table): each write of a key is a new row whose id is
 * the store's next revision. A row is a create, an update or a delete (a tombstone holding the last
 * value); the newest row of a key says what it is now, older rows are its history until compacted.
 * Drivers (memory.ts, sqlite.ts) implement `Rows`; log.ts builds the Backend on top, once.
 */

export interface Row {
  id: number;
  name: string;
  /** This row created the key (its createRevision is its own id). */
  created: boolean;
  /** This row deleted the key (value: what it was). */
  deleted: boolean;
  /** For rows that did not create the key: the revision that did. */
  createRevision: number;
  /** The key's previous row (0: none). */
  prevRevision: number;
  value: string;
  /** The value before this row (updates, deletes). */
  oldValue: string;
}

export type NewRow = Omit<Row, 'id'>;

/** The key range [prefix, end) of a prefix: end is the prefix with its last code unit one up. */
export function prefixEnd(prefix: string): string | undefined {
  if (!prefix) return undefined;
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/**
 * What a driver provides. Synchronous on purpose: both drivers are in-process (node:sqlite is), so
 * a transaction is a plain function call and two writes can never interleave inside one.
 */
export interface Rows {
  /** The newest row of a key (at or before revision `at` when given). */
  latest(name: string, at?: number): Row | undefined;
  /** Append a row; its id (the new revision). */
  insert(row: NewRow): number;
  /** The newest row id (0: empty). */
  maxId(): number;
  /**
   * The newest row (at or before `at`) of each key in the prefix's range and after `after`,
   * leaving out keys whose newest row is a delete, in key order, at most `limit` (0: all).
   */
  listLatest(prefix: string, after: string | undefined, limit: number, at: number): Row[];
  countLatest(prefix: string): number;
  /** Rows in the prefix's range with id > after, in id order, at most limit. */
  since(prefix: string, after: number, limit: number): Row[];
  /** Remove rows older than `revision` that are not the newest of their key (and old tombstones). */
  compact(revision: number): void;
  compactRevision(): number;
  setCompactRevision(revision: number): void;
  transaction<T>(fn: () => T): T;
  close(): void;
}
