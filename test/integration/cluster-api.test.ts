/**
 * The cluster API server (issue 12, first steps) driven by the real kubectl 1.20 (Debian's
 * kubernetes-client, unpacked by scripts/setup) and by plain HTTP: discovery, apply of a
 * multi-document manifest (created, unchanged, configured), get with Kubernetes' columns, delete,
 * Status errors naming the field, optimistic concurrency, paging, and watch from a resourceVersion
 * (with 410 after compaction) — kubectl on the SQLite store, the HTTP cases on SQLite and on etcd.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { sqliteBackend, type Backend } from '../../src/cluster/storage/index.ts';
import { startApiServer, type ApiServer } from '../../src/cluster/api/index.ts';
import { spawnAsync } from '../helpers/pier.ts';
import { ETCD, startEtcd } from '../helpers/etcd.ts';
import { etcdBackend } from '../../src/cluster/storage/index.ts';

/** The stores the HTTP tests run on: SQLite (the embedded default) and etcd (when installed). */
const stores: [string, () => Promise<{ store: Backend; stop: () => Promise<void> }>][] = [
  ['sqlite', async () => { const d = mkdtempSync(join(tmpdir(), 'pier-cluster-api-')); return { store: sqliteBackend(join(d, 'state.db')), stop: async () => rmSync(d, { recursive: true, force: true }) }; }],
  ...(ETCD ? [['etcd', async () => { const e = await startEtcd(); return { store: etcdBackend([e.endpoint]), stop: () => e.stop() }; }] as [string, () => Promise<{ store: Backend; stop: () => Promise<void> }>]] : []),
];

const KUBECTL = '/opt/pier/kubectl-1.20/usr/bin/kubectl';
const skip = existsSync(KUBECTL) ? false : 'needs kubectl 1.20 (PIER_SETUP_TEST=1 scripts/setup)';

let dir = '';
let store: Backend;
let api: ApiServer;
let kubeconfig = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pier-cluster-api-'));
  store = sqliteBackend(join(dir, 'state.db'));
  api = await startApiServer({ store });
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, [
    'apiVersion: v1', 'kind: Config', 'current-context: pier',
    'clusters:', `- name: pier`, `  cluster:`, `    server: ${api.url}`,
    'contexts:', '- name: pier', '  context:', '    cluster: pier', '    user: admin',
    'users:', '- name: admin', '  user: {}', '',
  ].join('\n'));
});
after(async () => {
  await api?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** kubectl, asynchronously: the API server answers from this very process. */
function kubectl(args: string[], input?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return spawnAsync(KUBECTL, ['--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), ...args], { timeout: 30_000, env: { ...process.env, HOME: dir }, input: input ?? '' });
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The server the HTTP tests talk to (one per store driver). */
let httpApi: ApiServer;
let httpStore: Backend;

function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, httpApi.url);
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(u, { method, headers: { 'content-type': 'application/json', ...headers, ...(data ? { 'content-length': Buffer.byteLength(data) } : {}) } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => { let json; try { json = JSON.parse(text); } catch { json = undefined; } resolve({ status: res.statusCode ?? 0, json, text }); });
    });
    req.on('error', reject);
    req.end(data);
  });
}

const APP = `apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: demo
  labels:
    app: web
data:
  greeting: hello
  color: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: web-secret
  namespace: demo
stringData:
  password: s3cret
`;

describe('the cluster API with kubectl 1.20', { skip }, () => {
  test('version, api-resources, apply (created, unchanged, configured), get, delete', async () => {
    assert.match(await ok(['version']), /Server Version: version\.Info\{Major:"1", Minor:"32", GitVersion:"v1\.32\.0-pier"/);
    const res = await ok(['api-resources']);
    assert.match(res, /configmaps\s+cm\s+v1\s+true\s+ConfigMap/);
    assert.match(res, /namespaces\s+ns\s+v1\s+false\s+Namespace/);
    const file = join(dir, 'app.yaml');
    writeFileSync(file, APP);
    assert.equal(await ok(['apply', '-f', file]), 'namespace/demo created\nconfigmap/web-config created\nsecret/web-secret created\n');
    // a Secret applied with stringData reads "configured" every time, as on Kubernetes: the server
    // folds stringData into data, so kubectl's three-way diff always finds stringData missing
    assert.equal(await ok(['apply', '-f', file]), 'namespace/demo unchanged\nconfigmap/web-config unchanged\nsecret/web-secret configured\n');
    writeFileSync(file, APP.replace('color: blue', 'color: green'));
    assert.equal(await ok(['apply', '-f', file]), 'namespace/demo unchanged\nconfigmap/web-config configured\nsecret/web-secret configured\n');
    assert.equal(await ok(['get', 'cm', 'web-config', '-n', 'demo', '-o', 'jsonpath={.data.color}']), 'green');
    // the Secret's stringData became base64 data, as a real server stores it
    assert.equal(await ok(['get', 'secret', 'web-secret', '-n', 'demo', '-o', 'jsonpath={.data.password}']), Buffer.from('s3cret').toString('base64'));
    const table = (await ok(['get', 'configmaps', '-n', 'demo'])).split('\n');
    assert.match(table[0], /^NAME\s+DATA\s+AGE$/);
    assert.match(table[1], /^web-config\s+2\s+\d+s$/);
    assert.match(await ok(['get', 'secrets', '-n', 'demo']), /web-secret\s+Opaque\s+1\s+\d+s/);
    assert.match(await ok(['get', 'ns']), /demo\s+Active\s+\d+s[\s\S]*kube-system\s+Active/);
    assert.match(await ok(['get', 'cm', '-n', 'demo', '-l', 'app=web', '-o', 'name']), /^configmap\/web-config\n$/);
    assert.equal(await ok(['get', 'cm', '-n', 'demo', '-l', 'app=db', '-o', 'name']), '');
    await ok(['create', 'configmap', 'literal', '-n', 'demo', '--from-literal=a=1', '--from-literal=b=2']);
    assert.match(await ok(['get', 'cm', 'literal', '-n', 'demo']), /literal\s+2\s+/);
    await ok(['label', 'cm', 'literal', '-n', 'demo', 'tier=x']);
    assert.match(await ok(['get', 'cm', '-n', 'demo', '-l', 'tier=x', '-o', 'name']), /configmap\/literal/);
    assert.equal(await ok(['delete', '-f', file]), 'namespace "demo" deleted\nconfigmap "web-config" deleted\nsecret "web-secret" deleted\n');
    // the namespace's other objects go after it is marked Terminating, then the namespace
    let gone = await kubectl(['get', 'ns', 'demo']);
    for (let i = 0; i < 50 && gone.status === 0; i++) { await new Promise((r) => setTimeout(r, 100)); gone = await kubectl(['get', 'ns', 'demo']); }
    assert.match(gone.stderr, /Error from server \(NotFound\): namespaces "demo" not found/);
    const cm = await kubectl(['get', 'cm', 'literal', '-n', 'demo']);
    assert.notEqual(cm.status, 0);
    assert.match(cm.stderr, /Error from server \(NotFound\): (configmaps "literal"|namespaces "demo") not found/);
  });

  test('bad manifests get a Status naming what is wrong, and nothing is made', async () => {
    const bad = (yaml: string) => kubectl(['apply', '-f', '-'], yaml);
    const unknown = await bad('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: default\ndatta:\n  a: b\n');
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /unknown field "datta"/);
    const name = await bad('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n  namespace: default\n');
    assert.notEqual(name.status, 0);
    assert.match(name.stderr, /ConfigMap "Bad_Name" is invalid: metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
    const type = await bad('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typed\n  namespace: default\ndata:\n  a: 1\n');
    assert.notEqual(type.status, 0);
    assert.match(type.stderr, /data\[a\]: Invalid value: must be a string|cannot unmarshal number/);
    const nons = await bad('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lost\n  namespace: nowhere\n');
    assert.notEqual(nons.status, 0);
    assert.match(nons.stderr, /namespaces "nowhere" not found/);
    assert.equal(await ok(['get', 'cm', '-n', 'default', '-o', 'name']), '', 'nothing was made');
  });
});

for (const [driver, make] of stores) describe(`the cluster API over HTTP, on ${driver}`, { timeout: 60_000 }, () => {
  let stopStore: () => Promise<void> = async () => undefined;
  before(async () => {
    const m = await make();
    httpStore = m.store;
    stopStore = m.stop;
    httpApi = await startApiServer({ store: httpStore });
  });
  after(async () => {
    await httpApi.close();
    await httpStore.close();
    await stopStore();
  });

  test('optimistic concurrency: a stale resourceVersion is a 409 Conflict Status', async () => {
    const c = await http('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'occ' }, data: { n: '1' } });
    assert.equal(c.status, 201);
    const rv = c.json.metadata.resourceVersion as string;
    const u = await http('PUT', '/api/v1/namespaces/default/configmaps/occ', { ...c.json, data: { n: '2' } });
    assert.equal(u.status, 200);
    assert.notEqual(u.json.metadata.resourceVersion, rv);
    const stale = await http('PUT', '/api/v1/namespaces/default/configmaps/occ', { ...c.json, data: { n: '3' } });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.kind, 'Status');
    assert.equal(stale.json.reason, 'Conflict');
    const dup = await http('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'occ' } });
    assert.equal(dup.status, 409);
    assert.equal(dup.json.reason, 'AlreadyExists');
    const mp = await http('PATCH', '/api/v1/namespaces/default/configmaps/occ', { data: { n: null, m: 'x' } }, { 'content-type': 'application/merge-patch+json' });
    assert.deepEqual(mp.json.data, { m: 'x' });
    const jp = await http('PATCH', '/api/v1/namespaces/default/configmaps/occ', [{ op: 'add', path: '/data/k', value: 'v' }, { op: 'test', path: '/data/m', value: 'x' }], { 'content-type': 'application/json-patch+json' });
    assert.deepEqual(jp.json.data, { m: 'x', k: 'v' });
    const failed = await http('PATCH', '/api/v1/namespaces/default/configmaps/occ', [{ op: 'test', path: '/data/m', value: 'no' }], { 'content-type': 'application/json-patch+json' });
    assert.equal(failed.status, 422);
    assert.equal((await http('DELETE', '/api/v1/namespaces/default/configmaps/occ')).status, 200);
    assert.equal((await http('GET', '/api/v1/namespaces/default/configmaps/occ')).json.reason, 'NotFound');
  });

  test('lists page with limit and continue at one revision', async () => {
    for (let i = 0; i < 7; i++) assert.equal((await http('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: `page-${i}`, labels: { set: 'paging' } } })).status, 201);
    const names: string[] = [];
    let cont = '';
    let rv = '';
    for (let n = 0; n < 10; n++) {
      const r = await http('GET', `/api/v1/namespaces/default/configmaps?labelSelector=set%3Dpaging&limit=3${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      assert.equal(r.status, 200);
      if (!rv) rv = r.json.metadata.resourceVersion;
      assert.equal(r.json.metadata.resourceVersion, rv, 'every page at the first page\'s revision');
      names.push(...r.json.items.map((o: any) => o.metadata.name));
      if (n === 0) await http('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'page-9', labels: { set: 'paging' } } });
      cont = r.json.metadata.continue ?? '';
      if (!cont) break;
    }
    assert.deepEqual(names, ['page-0', 'page-1', 'page-2', 'page-3', 'page-4', 'page-5', 'page-6'], 'the one written between pages is not in this list');
    const bad = await http('GET', '/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20(b');
    assert.equal(bad.status, 400);
    assert.match(bad.json.message, /unable to parse requirement/);
    await http('DELETE', '/api/v1/namespaces/default/configmaps?labelSelector=set%3Dpaging');
    assert.equal((await http('GET', '/api/v1/namespaces/default/configmaps?labelSelector=set%3Dpaging')).json.items.length, 0);
  });

  test('watch from a resourceVersion streams the changes; after compaction it is 410 Gone', async () => {
    const c = await http('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'w1' } });
    const from = c.json.metadata.resourceVersion as string;
    const events: any[] = [];
    const ac = new AbortController();
    const done = new Promise<void>((resolve, reject) => {
      const req = request(new URL(`/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${from}`, httpApi.url), { signal: ac.signal }, (res) => {
        let buf = '';
        res.on('data', (d) => {
          buf += d;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            events.push(JSON.parse(buf.slice(0, nl)));
            buf = buf.slice(nl + 1);
            if (events.length === 3) { ac.abort(); resolve(); }
          }
        });
        res.on('error', () => undefined);
      });
      req.on('error', (e) => { if (!ac.signal.aborted) reject(e); });
      req.end();
    });
    await new Promise((r) => setTimeout(r, 50));
    const w2 = await http('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'w2' } });
    await http('PATCH', '/api/v1/namespaces/default/configmaps/w1', { data: { a: 'b' } }, { 'content-type': 'application/merge-patch+json' });
    await http('DELETE', '/api/v1/namespaces/default/configmaps/w2');
    await done;
    assert.deepEqual(events.map((e) => [e.type, e.object.metadata.name]), [['ADDED', 'w2'], ['MODIFIED', 'w1'], ['DELETED', 'w2']]);
    assert.equal(events[0].object.metadata.resourceVersion, w2.json.metadata.resourceVersion);
    await httpStore.compact(await httpStore.currentRevision());
    const old = await new Promise<string>((resolve, reject) => {
      const req = request(new URL(`/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${from}`, httpApi.url), (res) => {
        let t = '';
        res.on('data', (d) => { t += d; if (t.includes('\n')) { req.destroy(); resolve(t); } });
      });
      req.on('error', (e) => { if (!String(e).includes('socket hang up')) reject(e); });
      req.end();
    });
    const ev = JSON.parse(old.split('\n')[0]);
    assert.equal(ev.type, 'ERROR');
    assert.equal(ev.object.code, 410);
    assert.equal(ev.object.reason, 'Expired');
    await http('DELETE', '/api/v1/namespaces/default/configmaps/w1');
  });
});
