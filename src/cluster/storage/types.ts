/**
 * The cluster store's one interface (kine's `Backend`, pkg/server/types.go): revisioned key-values.
 * Every write gets the next revision of the whole store; an object's resourceVersion is the
 * revision of its last write; a list is read at one revision; a watch replays every change after a
 * revision, in order, until compaction has dropped that history (then it is `Compacted`: the API
 * server's 410 Gone, and clients re-list).
 */

export interface KeyValue {
  key: string;
  /** The object, as the API server encodes it (JSON text). */
  value: string;
  /** Revision of the write that created this key (since its last deletion). */
  createRevision: number;
  /** Revision of the last write to it: the object's resourceVersion. */
  modRevision: number;
}

export interface WatchEvent {
  type: 'create' | 'update' | 'delete';
  /** After the change (for a delete: the object as it was, at the delete's revision). */
  kv: KeyValue;
  /** Before the change (update, delete). */
  prevKv?: KeyValue;
}

export interface ListOptions {
  /** Keys after this one (paging: the last key of the previous page). */
  after?: string;
  /** At most this many (0 or absent: all). */
  limit?: number;
  /** Read as of this revision (0 or absent: now). Older than the compaction: Compacted. */
  revision?: number;
}

export interface ListResult {
  /** The revision the list was read at (the list's resourceVersion). */
  revision: number;
  kvs: KeyValue[];
  /** More keys follow the last one returned. */
  more: boolean;
}

export interface WriteResult {
  /** The store's revision after the call. */
  revision: number;
  /** false: the key's modRevision was not the expected one (Conflict), or it does not exist. */
  ok: boolean;
  /** The key as it is now (after a successful write: the new value; after a conflict: the current one). */
  kv?: KeyValue;
}

export interface Backend {
  /** The store's revision (the last write's). */
  currentRevision(): Promise<number>;
  get(key: string, opts?: { revision?: number }): Promise<{ revision: number; kv?: KeyValue }>;
  /** Throws KeyExistsError when the key exists. */
  create(key: string, value: string): Promise<WriteResult>;
  /** Writes only when the key's modRevision is `expected` (optimistic concurrency). */
  update(key: string, value: string, expected: number): Promise<WriteResult>;
  /** Deletes only when the key's modRevision is `expected` (when given). */
  delete(key: string, expected?: number): Promise<WriteResult>;
  /** Keys starting with prefix, in key order. */
  list(prefix: string, opts?: ListOptions): Promise<ListResult>;
  count(prefix: string): Promise<{ revision: number; count: number }>;
  /**
   * Every change under prefix after revision `after`, in revision order, in batches, until the
   * signal aborts. Throws CompactedError (at once) when that history is gone.
   */
  watch(prefix: string, after: number, signal: AbortSignal): AsyncIterable<WatchEvent[]>;
  /** Drop the history before `revision` (the newest row of each live key is always kept). */
  compact(revision: number): Promise<void>;
  /** The oldest revision a read or watch may still ask for. */
  compactRevision(): Promise<number>;
  close(): Promise<void>;
}

export class KeyExistsError extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`key ${key} already exists`);
    this.key = key;
  }
}

export class CompactedError extends Error {
  readonly compacted: number;
  constructor(asked: number, compacted: number) {
    super(`revision ${asked} is compacted (the oldest kept is ${compacted})`);
    this.compacted = compacted;
  }
}
