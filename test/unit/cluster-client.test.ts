/**
 * The cluster API client against the real API server on loopback (memory store): REST verbs with
 * the server's Status as errors, and an Informer (controller/) on the client's ListWatch — synced
 * by a paged list, fed by the watch, and relisting after a 410 when its watch broke and the store
 * was compacted meanwhile.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryBackend, type Backend } from '../../src/cluster/storage/index.ts';
import { startApiServer, type ApiServer } from '../../src/cluster/api/index.ts';
import { ApiStatusError, KubeClient } from '../../src/cluster/client/index.ts';
import { Informer } from '../../src/cluster/controller/index.ts';
import type { KObject } from '../../src/cluster/controller/types.ts';

let store: Backend;
let api: ApiServer;
let client: KubeClient;
before(async () => {
  store = memoryBackend();
  api = await startApiServer({ store });
  client = new KubeClient(api.url);
});
after(async () => {
  client.close();
  await api.close();
  await store.close();
});

type CM = KObject & { data?: Record<string, string> };

async function until(fn: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !fn(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(fn(), `timed out waiting for ${what}`);
}

test('REST verbs, with the Status as the error', async () => {
  const cms = client.resource<CM>({ version: 'v1', resource: 'configmaps', namespace: 'default' });
  const c = await cms.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'one' }, data: { a: '1' } });
  assert.equal(c.metadata.namespace, 'default');
  assert.equal((await cms.patch('one', { data: { b: '2' } })).data?.b, '2');
  await assert.rejects(cms.create({ metadata: { name: 'one' } }), (e: ApiStatusError) => e.code === 409 && e.reason === 'AlreadyExists');
  await assert.rejects(cms.update({ ...c, data: {} }), (e: ApiStatusError) => e.code === 409 && e.reason === 'Conflict');
  await cms.delete('one');
  await assert.rejects(cms.get('one'), (e: ApiStatusError) => e.code === 404 && /configmaps "one" not found/.test(e.message));
});

test('an informer on the client syncs by a paged list, follows the watch, and relists after a 410', async () => {
  const cms = client.resource<CM>({ version: 'v1', resource: 'configmaps', namespace: 'inf' });
  await client.resource({ version: 'v1', resource: 'namespaces' }).create({ metadata: { name: 'inf' } });
  // more than one list page (500)
  await Promise.all(Array.from({ length: 620 }, (_, i) => cms.create({ metadata: { name: `cm-${i}` } })));
  const added = new Set<string>(), deleted: [string, boolean][] = [], updated: string[] = [];
  const inf = new Informer<CM>({ listWatch: cms.listWatch(), onError: () => undefined });
  inf.addEventHandler({
    onAdd: (o) => added.add(o.metadata.name),
    onUpdate: (a, b) => { if (a.metadata.resourceVersion !== b.metadata.resourceVersion) updated.push(b.metadata.name); },
    onDelete: (o, unknown) => deleted.push([o.metadata.name, unknown]),
  });
  inf.start();
  assert.equal(await inf.waitForSync(), true);
  assert.equal(added.size, 620, 'every page listed');
  await cms.patch('cm-1', { data: { x: 'y' } });
  await cms.delete('cm-2');
  await cms.create({ metadata: { name: 'late' } });
  await until(() => updated.includes('cm-1') && deleted.some(([n]) => n === 'cm-2') && added.has('late'), 'watch events');
  assert.deepEqual(deleted, [['cm-2', false]], 'seen by the watch, so its final state is known');
  // break the watch, change things while it is away, and compact past where it was
  api.server.closeAllConnections();
  await cms.delete('cm-3');
  await cms.create({ metadata: { name: 'while-away' } });
  for (let i = 0; i < 3; i++) await cms.patch('cm-4', { data: { n: String(i) } });
  await store.compact(await store.currentRevision());
  await until(() => deleted.some(([n]) => n === 'cm-3') && added.has('while-away'), 'the relist');
  assert.deepEqual(deleted.find(([n]) => n === 'cm-3'), ['cm-3', true], 'a deletion found by the relist: final state unknown');
  assert.equal(inf.list().length, 620 - 2 + 2);
  assert.equal(inf.get('inf/cm-4')?.data?.n, '2');
  await inf.stop();
});
