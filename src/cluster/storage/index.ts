/**
 * src/cluster/storage: the cluster's store (kine's design): one Backend interface over a log of
 * revisioned rows, with an in-memory driver (tests) and SQLite on node:sqlite (the embedded
 * default), and etcd (more than one control-plane machine; etcd replicates, pier adds nothing).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { LogBackend } from './log.ts';
import { MemoryRows } from './memory.ts';
import { SqliteRows } from './sqlite.ts';
import type { Backend } from './types.ts';
import { EtcdBackend } from './etcd.ts';

export type { Backend, KeyValue, ListOptions, ListResult, WatchEvent, WriteResult } from './types.ts';
export { CompactedError, KeyExistsError } from './types.ts';

export function memoryBackend(): Backend {
  return new LogBackend(new MemoryRows());
}

/** A SQLite store in `path` (made, 0700 dir, when absent). */
export function sqliteBackend(path: string): Backend {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  return new LogBackend(new SqliteRows(path));
}

/** An etcd 3.4+ cluster (`http://host:2379`, …): the store for more than one control-plane machine. */
export function etcdBackend(endpoints: string[]): Backend {
  return new EtcdBackend(endpoints);
}
