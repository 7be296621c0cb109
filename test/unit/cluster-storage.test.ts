/**
 * The cluster store (src/cluster/storage): the same cases over both drivers — the in-memory one and
 * SQLite on node:sqlite — so they cannot drift apart: optimistic writes, revisions, lists at a
 * revision with paging, watch from a revision, compaction (410's source), and SQLite reopening.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactedError, KeyExistsError, etcdBackend, memoryBackend, sqliteBackend, type Backend, type WatchEvent } from '../../src/cluster/storage/index.ts';
import { ETCD, startEtcd } from '../helpers/etcd.ts';

const dirs: string[] = [];
const drivers: [string, () => Backend | Promise<Backend>][] = [
  ['memory', () => memoryBackend()],
  ['sqlite', () => { const d = mkdtempSync(join(tmpdir(), 'pier-kine-')); dirs.push(d); return sqliteBackend(join(d, 'state.db')); }],
];
// etcd (Debian's etcd-server, from scripts/setup's test set): a fresh instance per test, stopped
// with the backend
if (ETCD) {
  drivers.push(['etcd', async () => {
    const e = await startEtcd();
    const backend = etcdBackend([e.endpoint]);
    const close = backend.close.bind(backend);
    backend.close = async () => { await close(); await e.stop(); };
    return backend;
  }]);
}

/** Collect watch events until n have come (or fail after 3 s). */
async function take(b: Backend, prefix: string, after: number, n: number, during?: () => Promise<void>): Promise<WatchEvent[]> {
  const ac = new AbortController();
  const out: WatchEvent[] = [];
  const timer = setTimeout(() => ac.abort(), 3000);
  const reading = (async () => {
    for await (const batch of b.watch(prefix, after, ac.signal)) {
      out.push(...batch);
      if (out.length >= n) break;
    }
  })();
  await during?.();
  await reading;
  clearTimeout(timer);
  return out;
}

for (const [name, make] of drivers) {
  describe(`storage: ${name}`, { timeout: 60_000 }, () => {
    test('create, get, update and delete are optimistic, and every write is the next revision', async () => {
      const b = await make();
      const c = await b.create('/r/cm/ns/a', '{"v":1}');
      assert.equal(c.ok, true);
      await assert.rejects(b.create('/r/cm/ns/a', '{}'), KeyExistsError);
      const other = await b.create('/r/cm/ns/b', '{"v":1}');
      assert.equal(other.revision, c.revision + 1, 'one revision for the whole store');
      const u = await b.update('/r/cm/ns/a', '{"v":2}', c.revision);
      assert.equal(u.ok, true);
      assert.equal(u.kv!.modRevision, u.revision);
      assert.equal(u.kv!.createRevision, c.revision, 'createRevision stays');
      const stale = await b.update('/r/cm/ns/a', '{"v":3}', c.revision);
      assert.equal(stale.ok, false, 'a stale revision is a conflict');
      assert.equal(stale.kv!.value, '{"v":2}', 'the conflict says what is there');
      assert.equal((await b.update('/r/cm/ns/none', '{}', 1)).ok, false);
      assert.equal((await b.delete('/r/cm/ns/a', c.revision)).ok, false, 'a delete checks the revision too');
      const d = await b.delete('/r/cm/ns/a', u.revision);
      assert.equal(d.ok, true);
      assert.equal(d.kv!.value, '{"v":2}', 'the delete answers what was deleted');
      assert.equal((await b.get('/r/cm/ns/a')).kv, undefined);
      assert.equal((await b.delete('/r/cm/ns/a')).ok, false);
      const again = await b.create('/r/cm/ns/a', '{"v":9}');
      assert.equal(again.kv!.createRevision, again.revision, 'a re-create starts over');
      assert.equal(await b.currentRevision(), again.revision);
      await b.close();
    });

    test('lists are in key order, by prefix, paged, and read at a revision', async () => {
      const b = await make();
      for (const k of ['c', 'a', 'b', 'd']) await b.create(`/r/cm/ns/${k}`, `{"k":"${k}"}`);
      await b.create('/r/cm/nsx/z', '{}');
      await b.create('/r/cmx/ns/y', '{}');
      const all = await b.list('/r/cm/ns/');
      assert.deepEqual(all.kvs.map((kv) => kv.key), ['/r/cm/ns/a', '/r/cm/ns/b', '/r/cm/ns/c', '/r/cm/ns/d']);
      assert.equal(all.more, false);
      assert.equal((await b.count('/r/cm/')).count, 5);
      const p1 = await b.list('/r/cm/ns/', { limit: 3 });
      assert.deepEqual(p1.kvs.map((kv) => kv.key.slice(-1)), ['a', 'b', 'c']);
      assert.equal(p1.more, true);
      const at = p1.revision;
      // writes between the pages do not show in a page read at the first page's revision
      const cur = (await b.get('/r/cm/ns/d')).kv!;
      await b.update('/r/cm/ns/d', '{"k":"d2"}', cur.modRevision);
      await b.create('/r/cm/ns/e', '{}');
      await b.delete('/r/cm/ns/a');
      const p2 = await b.list('/r/cm/ns/', { limit: 3, after: p1.kvs[2].key, revision: at });
      assert.deepEqual(p2.kvs.map((kv) => [kv.key.slice(-1), kv.value]), [['d', '{"k":"d"}']]);
      assert.equal(p2.more, false);
      const now = await b.list('/r/cm/ns/');
      assert.deepEqual(now.kvs.map((kv) => kv.key.slice(-1)), ['b', 'c', 'd', 'e'], 'deleted keys are gone, new ones there');
      assert.equal((await b.get('/r/cm/ns/a', { revision: at })).kv?.value, '{"k":"a"}', 'a get at a revision sees the past');
      await b.close();
    });

    test('a watch replays every change after a revision, in order, and wakes at once for new ones', async () => {
      const b = await make();
      const start = await b.currentRevision();
      const a = await b.create('/r/pods/ns/a', '{"n":1}');
      await b.create('/r/cm/ns/other', '{}');
      const u = await b.update('/r/pods/ns/a', '{"n":2}', a.revision);
      const replayed = await take(b, '/r/pods/', start, 2);
      assert.deepEqual(replayed.map((e) => [e.type, e.kv.value, e.kv.modRevision]), [['create', '{"n":1}', a.revision], ['update', '{"n":2}', u.revision]]);
      assert.equal(replayed[1].prevKv?.value, '{"n":1}');
      assert.equal(replayed[1].prevKv?.modRevision, a.revision);
      const t0 = Date.now();
      const live = await take(b, '/r/pods/', u.revision, 2, async () => {
        await new Promise((r) => setTimeout(r, 20));
        await b.create('/r/pods/ns/b', '{}');
        await b.delete('/r/pods/ns/a');
      });
      assert.deepEqual(live.map((e) => [e.type, e.kv.key]), [['create', '/r/pods/ns/b'], ['delete', '/r/pods/ns/a']]);
      assert.equal(live[1].kv.value, '{"n":2}', 'a delete event carries the last value');
      assert.ok(Date.now() - t0 < 900, 'woken by the write, not by the poll');
      await b.close();
    });

    test('compaction drops history: reads and watches before it are Compacted, reads after it are whole', async () => {
      const b = await make();
      const j = await b.create('/r/cm/ns/j', '"j1"');
      const k = await b.create('/r/cm/ns/k', '"k1"');
      await b.update('/r/cm/ns/k', '"k2"', k.revision);
      const gone = await b.create('/r/cm/ns/gone', '"x"');
      await b.delete('/r/cm/ns/gone', gone.revision);
      const point = await b.currentRevision();
      await b.update('/r/cm/ns/j', '"j2"', j.revision);
      await b.compact(point);
      assert.equal(await b.compactRevision(), point);
      await assert.rejects(b.list('/r/cm/', { revision: point - 1 }), CompactedError);
      await assert.rejects(async () => { for await (const _ of b.watch('/r/cm/', j.revision, AbortSignal.timeout(500))) break; }, CompactedError);
      // a key written before the point and again after it is still seen at the point
      const atPoint = await b.list('/r/cm/', { revision: point });
      assert.deepEqual(atPoint.kvs.map((kv) => [kv.key.slice(-1), kv.value]), [['j', '"j1"'], ['k', '"k2"']]);
      const now = await b.list('/r/cm/');
      assert.deepEqual(now.kvs.map((kv) => kv.value), ['"j2"', '"k2"']);
      // a watch from the point on still gets what came after it
      const after = await take(b, '/r/cm/', point, 1);
      assert.deepEqual(after.map((e) => [e.type, e.kv.value]), [['update', '"j2"']]);
      await b.close();
    });

    test('of many writers racing with one revision, exactly one wins', async () => {
      const b = await make();
      const c = await b.create('/r/cm/ns/race', '0');
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => b.update('/r/cm/ns/race', String(i + 1), c.revision)));
      assert.equal(results.filter((r) => r.ok).length, 1);
      await b.close();
    });
  });
}

test('storage: sqlite keeps everything across a reopen, the compaction point too', async () => {
  const d = mkdtempSync(join(tmpdir(), 'pier-kine-'));
  dirs.push(d);
  const file = join(d, 'state.db');
  let b = sqliteBackend(file);
  const a = await b.create('/r/cm/ns/a', '"1"');
  await b.update('/r/cm/ns/a', '"2"', a.revision);
  await b.create('/r/cm/ns/b', '"b"');
  await b.compact(a.revision + 1);
  const rev = await b.currentRevision();
  await b.close();
  b = sqliteBackend(file);
  assert.equal(await b.currentRevision(), rev);
  assert.equal(await b.compactRevision(), a.revision + 1);
  assert.deepEqual((await b.list('/r/cm/')).kvs.map((kv) => kv.value), ['"2"', '"b"']);
  const n = await b.create('/r/cm/ns/c', '"c"');
  assert.equal(n.revision, rev + 1, 'revisions go on from where they were');
  await b.close();
  for (const x of dirs) rmSync(x, { recursive: true, force: true });
});
