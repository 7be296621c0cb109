/**
 * The etcd driver: the same Backend on etcd 3.4 (Debian's etcd-server), for more than one
 * control-plane machine — etcd does the replication, pier adds none. Through npm `etcd3`'s raw KV
 * and watch clients (gRPC): create is a transaction "create revision is 0, then put"; update and
 * delete compare the key's mod revision; lists are ranges at a revision with a limit; a watch
 * starts after a revision with previous values. etcd's revision is the resourceVersion, as in
 * Kubernetes.
 *
 * etcd does not tell its compaction point: pier records it in one key (META) just before it
 * compacts, and a read of a compacted revision is turned into CompactedError with that point.
 */
import { Etcd3 } from 'etcd3';
import { CompactedError, KeyExistsError, type Backend, type KeyValue, type ListOptions, type ListResult, type WatchEvent, type WriteResult } from './types.ts';
import { prefixEnd } from './rows.ts';

const META = '/pier/meta/compact-revision';
const b = (s: string) => Buffer.from(s, 'utf8');

interface RawKv { key: Buffer; value: Buffer; create_revision: string; mod_revision: string }

function kvOf(r: RawKv): KeyValue {
  return { key: r.key.toString('utf8'), value: r.value.toString('utf8'), createRevision: Number(r.create_revision), modRevision: Number(r.mod_revision) };
}

function isCompacted(err: unknown): boolean {
  return /compacted/i.test(String((err as Error)?.message ?? err));
}

export class EtcdBackend implements Backend {
  private readonly client: Etcd3;

  constructor(endpoints: string[]) {
    this.client = new Etcd3({ hosts: endpoints });
  }

  private async compacted(asked: number): Promise<CompactedError> {
    return new CompactedError(asked, await this.compactRevision());
  }

  async currentRevision(): Promise<number> {
    const r = await this.client.kv.range({ key: b(META), count_only: true });
    return Number(r.header.revision);
  }

  async get(key: string, opts: { revision?: number } = {}): Promise<{ revision: number; kv?: KeyValue }> {
    try {
      const r = await this.client.kv.range({ key: b(key), ...(opts.revision ? { revision: opts.revision } : {}) });
      return { revision: opts.revision || Number(r.header.revision), ...(r.kvs.length ? { kv: kvOf(r.kvs[0] as RawKv) } : {}) };
    } catch (err) {
      if (isCompacted(err)) throw await this.compacted(opts.revision ?? 0);
      throw err;
    }
  }

  async create(key: string, value: string): Promise<WriteResult> {
    const r = await this.client.kv.txn({
      compare: [{ key: b(key), target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: b(key), value: b(value) } }],
      failure: [],
    });
    if (!r.succeeded) throw new KeyExistsError(key);
    const rev = Number(r.header.revision);
    return { revision: rev, ok: true, kv: { key, value, createRevision: rev, modRevision: rev } };
  }

  async update(key: string, value: string, expected: number): Promise<WriteResult> {
    const r = await this.client.kv.txn({
      compare: [{ key: b(key), target: 'Mod', result: 'Equal', mod_revision: expected }],
      success: [{ request_put: { key: b(key), value: b(value), prev_kv: true } }],
      failure: [{ request_range: { key: b(key) } }],
    });
    const rev = Number(r.header.revision);
    if (!r.succeeded) {
      const cur = r.responses[0]?.response_range?.kvs?.[0] as RawKv | undefined;
      return { revision: rev, ok: false, ...(cur ? { kv: kvOf(cur) } : {}) };
    }
    const prev = r.responses[0]?.response_put?.prev_kv as RawKv | undefined;
    return { revision: rev, ok: true, kv: { key, value, createRevision: prev ? Number(prev.create_revision) : rev, modRevision: rev } };
  }

  async delete(key: string, expected?: number): Promise<WriteResult> {
    const r = await this.client.kv.txn({
      compare: expected !== undefined ? [{ key: b(key), target: 'Mod', result: 'Equal', mod_revision: expected }] : [{ key: b(key), target: 'Create', result: 'Greater', create_revision: 0 }],
      success: [{ request_delete_range: { key: b(key), prev_kv: true } }],
      failure: [{ request_range: { key: b(key) } }],
    });
    const rev = Number(r.header.revision);
    if (!r.succeeded) {
      const cur = r.responses[0]?.response_range?.kvs?.[0] as RawKv | undefined;
      return { revision: rev, ok: false, ...(cur ? { kv: kvOf(cur) } : {}) };
    }
    const prev = r.responses[0]?.response_delete_range?.prev_kvs?.[0] as RawKv | undefined;
    return { revision: rev, ok: Boolean(prev), ...(prev ? { kv: kvOf(prev) } : {}) };
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
    try {
      const r = await this.client.kv.range({
        key: b(opts.after !== undefined ? `${opts.after}\0` : prefix),
        range_end: b(prefixEnd(prefix) ?? '\0'),
        ...(limit ? { limit } : {}),
        ...(opts.revision ? { revision: opts.revision } : {}),
      });
      return { revision: opts.revision || Number(r.header.revision), kvs: (r.kvs as RawKv[]).map(kvOf), more: Boolean(r.more) };
    } catch (err) {
      if (isCompacted(err)) throw await this.compacted(opts.revision ?? 0);
      throw err;
    }
  }

  async count(prefix: string): Promise<{ revision: number; count: number }> {
    const r = await this.client.kv.range({ key: b(prefix), range_end: b(prefixEnd(prefix) ?? '\0'), count_only: true });
    return { revision: Number(r.header.revision), count: Number(r.count) };
  }

  async *watch(prefix: string, after: number, signal: AbortSignal): AsyncIterable<WatchEvent[]> {
    const c = await this.compactRevision();
    if (after + 1 < c) throw new CompactedError(after, c);
    const queue: (WatchEvent[] | Error)[] = [];
    let wake: (() => void) | undefined;
    const push = (x: WatchEvent[] | Error) => { queue.push(x); wake?.(); };
    const watcher = await this.client.watch().prefix(prefix).startRevision(String(after + 1)).withPreviousKV().create();
    watcher.on('data', (res) => {
      const evs: WatchEvent[] = [];
      for (const e of res.events) {
        const kv = kvOf(e.kv as RawKv);
        const prev = e.prev_kv ? kvOf(e.prev_kv as RawKv) : undefined;
        if (e.type === 'Delete') evs.push({ type: 'delete', kv: { ...(prev ?? kv), modRevision: kv.modRevision }, ...(prev ? { prevKv: prev } : {}) });
        else evs.push({ type: kv.createRevision === kv.modRevision ? 'create' : 'update', kv, ...(prev ? { prevKv: prev } : {}) });
      }
      if (evs.length) push(evs);
    });
    watcher.on('error', (err) => push(isCompacted(err) ? new CompactedError(after, c) : err));
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const x = queue.shift();
        if (x === undefined) { await new Promise<void>((r) => { wake = r; }); wake = undefined; continue; }
        if (x instanceof Error) throw x;
        yield x;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      await watcher.cancel().catch(() => undefined);
    }
  }

  async compact(revision: number): Promise<void> {
    const rev = Math.min(revision, await this.currentRevision());
    if (rev <= await this.compactRevision()) return;
    // the point first (etcd keeps no record of it that a client can read), then the compaction
    await this.client.kv.put({ key: b(META), value: b(String(rev)) });
    await this.client.kv.compact({ revision: rev, physical: true });
  }

  async compactRevision(): Promise<number> {
    const r = await this.client.kv.range({ key: b(META) });
    return r.kvs.length ? Number((r.kvs[0] as RawKv).value.toString('utf8')) : 0;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
