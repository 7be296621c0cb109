/**
 * pier's registry client against Debian's docker-registry 2.8.2 on loopback: push, pull into a
 * fresh root, skip present blobs, cross-repository mount, chunked upload with resume, errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { TOP, pierAsync } from '../helpers/pier.ts';
import { arm64Image } from '../helpers/image.ts';
import { startProxy, startRegistry, type Proxy, type Registry } from '../helpers/registry.ts';
import { ImageService } from '../../src/image/index.ts';
import { Pusher, Puller, RegistryClient, parseRemoteReference, Progress } from '../../src/registry/client/index.ts';
import { digestOf } from '../../src/common/digest.ts';
import { MEDIA_TYPES } from '../../src/image/index.ts';
import { fsx } from '../../src/common/fsx.ts';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { takeResponseBody } from '../../src/registry/client/native-io.ts';
import { PierError } from '../../src/common/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pier-regclient-'));
const rootA = join(tmp, 'a');
const rootB = join(tmp, 'b');
let reg: Registry;
let proxy: Proxy;
let imageDigest = '';

const pier = pierAsync;

const uploads = () => proxy.seen.filter((s) => (s.method === 'PUT' || s.method === 'PATCH') && s.path.includes('/blobs/uploads/'));
const mounts = () => proxy.seen.filter((s) => s.method === 'POST' && s.query.includes('mount='));

before(async () => {
  reg = await startRegistry(join(tmp, 'registry'));
  proxy = await startProxy(reg.host);
  const img = await new ImageService({ root: rootA }).bootstrap('busybox');
  imageDigest = img.descriptor.digest;
});

after(async () => {
  await proxy?.stop();
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('push, then pull into a fresh root: same manifest digest, and the pulled image unpacks', async () => {
  const dest = `${proxy.host}/library/busybox:latest`;
  const push = await pier(rootA, ['push', 'busybox:latest', dest]);
  assert.equal(push.status, 0, push.stderr);
  assert.match(push.stdout, /^[0-9a-f]{12}: pushed \d/m);
  assert.match(push.stdout, new RegExp(`digest: ${imageDigest}`));
  assert.equal(uploads().length, 2, 'config and one layer uploaded');

  const pull = await pier(rootB, ['pull', dest]);
  assert.equal(pull.status, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(`${dest}: digest: ${imageDigest}`));
  const inspect = JSON.parse((await pier(rootB, ['image', 'inspect', dest])).stdout);
  const info = Array.isArray(inspect) ? inspect[0] : inspect;
  assert.equal(JSON.stringify(info).includes(imageDigest), true);
  const bundle = join(tmp, 'bundle');
  const unpack = await pier(rootB, ['image', 'unpack', dest, bundle]);
  assert.equal(unpack.status, 0, unpack.stderr);
  assert.ok(existsSync(join(bundle, 'rootfs', 'bin', 'busybox')));
  assert.ok(existsSync(join(bundle, 'config.json')));
});

test('a second push and a second pull skip every blob', async () => {
  const before = uploads().length;
  const push = await pier(rootA, ['push', 'busybox:latest', `${proxy.host}/library/busybox:latest`]);
  assert.equal(push.status, 0, push.stderr);
  assert.equal(uploads().length, before, 'nothing uploaded');
  assert.doesNotMatch(push.stdout, /pushed/);
  assert.equal(push.stdout.match(/: exists /g)?.length, 2);
  const blobGets = () => proxy.seen.filter((s) => s.method === 'GET' && s.path.includes('/blobs/')).length;
  const gets = blobGets();
  const pull = await pier(rootB, ['pull', `${proxy.host}/library/busybox:latest`]);
  assert.equal(pull.status, 0, pull.stderr);
  assert.equal(blobGets(), gets, 'no blob fetched');
});

test('pushing to another repository of the same registry mounts the blobs', async () => {
  const before = uploads().length;
  const m0 = mounts().length;
  const push = await pier(rootA, ['push', 'busybox:latest', `${proxy.host}/team/copy:v1`]);
  assert.equal(push.status, 0, push.stderr);
  assert.equal(uploads().length, before, 'no upload');
  assert.equal(mounts().length - m0, 2, 'two mounts');
  assert.equal(push.stdout.match(/mounted from library\/busybox/g)?.length, 2);
  // The registry really has them in the new repository.
  const pull = await pier(join(tmp, 'c'), ['pull', `${proxy.host}/team/copy:v1`]);
  assert.equal(pull.status, 0, pull.stderr);
});

test('chunked push with a small chunk size resumes after a failed PATCH', async () => {
  // A fresh root knows of no repository to mount from, so the layer is uploaded in chunks.
  const root = join(tmp, 'd');
  const svc = new ImageService({ root });
  await svc.bootstrap('busybox');
  let patches = 0;
  proxy.fail = (req) => req.method === 'PATCH' && ++patches === 3;
  const seen0 = proxy.seen.length;
  try {
    const r = await pier(root, ['push', '--chunk-size', '131072', 'busybox:latest', `${proxy.host}/chunked/bb:1`]);
    assert.equal(r.status, 0, r.stderr);
  } finally {
    proxy.fail = undefined;
  }
  const mine = proxy.seen.slice(seen0);
  const layerSize = JSON.parse(readFileSync(join(root, 'images', 'blobs', 'sha256', imageDigest.slice(7)), 'utf8')).layers[0].size as number;
  const chunks = Math.ceil(layerSize / 131072);
  assert.ok(chunks >= 3, `layer of ${layerSize} bytes gives ${chunks} chunks`);
  assert.equal(mine.filter((s) => s.method === 'PATCH').length, chunks + 1, 'every chunk once, plus the failed one again');
  assert.equal(mine.filter((s) => s.method === 'GET' && s.path.includes('/blobs/uploads/')).length, 1, 'one status query');
  const pull = await pier(join(tmp, 'e'), ['pull', `${proxy.host}/chunked/bb:1`]);
  assert.equal(pull.status, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(imageDigest));
});

test('a chunked push cut off for good is resumed by the next push, where the registry says it stands', async () => {
  const root = join(tmp, 'resume');
  await new ImageService({ root }).bootstrap('busybox');
  const dest = `${proxy.host}/resumed/bb:1`;
  let patches = 0;
  proxy.fail = (req) => req.method === 'PATCH' && ++patches >= 3; // two chunks get in, then nothing does
  try {
    const r = await pier(root, ['push', '--chunk-size', '131072', 'busybox:latest', dest]);
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one error line: ${r.stderr}`);
  } finally {
    proxy.fail = undefined;
  }
  const saved = JSON.parse(readFileSync(join(root, 'registry', 'uploads.json'), 'utf8')) as Record<string, { location: string }>;
  assert.equal(Object.keys(saved).length, 1, 'the unfinished session is remembered');
  assert.match(Object.keys(saved)[0], new RegExp(`^${proxy.host}/resumed/bb@sha256:`));
  const seen0 = proxy.seen.length;
  const again = await pier(root, ['push', '--chunk-size', '131072', 'busybox:latest', dest]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout + again.stderr, /resumed at 262144 of \d+ bytes/);
  const mine = proxy.seen.slice(seen0);
  const layerSize = JSON.parse(readFileSync(join(root, 'images', 'blobs', 'sha256', imageDigest.slice(7)), 'utf8')).layers[0].size as number;
  const chunks = Math.ceil(layerSize / 131072);
  assert.equal(mine.filter((s) => s.method === 'PATCH').length, chunks - 2, 'only the chunks the registry lacked');
  assert.equal(mine.filter((s) => s.method === 'POST').length, 0, 'no new session');
  assert.deepEqual(JSON.parse(readFileSync(join(root, 'registry', 'uploads.json'), 'utf8')), {}, 'forgotten once done');
  const pull = await pier(join(tmp, 'resume-pull'), ['pull', dest]);
  assert.equal(pull.status, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(imageDigest));
});

test('the API: Pusher and Puller report what they did', async () => {
  const svc = new ImageService({ root: rootA });
  const dest = parseRemoteReference(`${proxy.host}/api/bb:2`);
  const pushed = await new Pusher(svc, dest, { plainHttp: true, progress: new Progress({ quiet: true }) }).push('busybox');
  assert.equal(pushed.digest, imageDigest);
  assert.deepEqual(pushed.blobs.map((b) => b.action).sort(), ['mounted', 'mounted']);
  const pulled = await new Puller(new ImageService({ root: join(tmp, 'f') }), dest, { plainHttp: true }).pull();
  assert.equal(pulled.digest, imageDigest);
  assert.deepEqual(pulled.blobs.map((b) => b.action), ['pulled', 'pulled']);
});

test('errors: an unknown tag, an unknown local image, no registry in the name', async () => {
  const root = join(tmp, 'g');
  const r = await pier(root, ['pull', `${reg.host}/library/busybox:nope`]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^pier: pull 127\.0\.0\.1:\d+\/library\/busybox:nope: MANIFEST_UNKNOWN: manifest unknown[^\n]*\n$/);
  assert.equal(existsSync(join(root, 'images', 'index.json')), false, 'nothing tagged');
  const r2 = await pier(rootA, ['push', 'nope:1', `${reg.host}/x/y:1`]);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /^pier: push [^:]+:\d+\/x\/y:1: image "nope:1" not found\n$/);
  const r3 = await pier(rootA, ['push', 'busybox:latest']);
  assert.equal(r3.status, 1);
  assert.match(r3.stderr, /names no registry/);
});

test('an index: its children are pushed first; a pull picks this platform and tags its manifest', async () => {
  const svc = new ImageService({ root: rootA });
  const child = svc.refs.get('busybox:latest')!;
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex,
    manifests: [{ mediaType: child.mediaType, digest: child.digest, size: child.size, platform: svc.platform }],
  }));
  const digest = digestOf(bytes);
  await svc.content.write(bytes, { digest, size: bytes.length });
  await svc.refs.set('multi:1', { mediaType: MEDIA_TYPES.ociIndex, digest, size: bytes.length });
  const seen0 = proxy.seen.length;
  const push = await pier(rootA, ['push', 'multi:1', `${proxy.host}/multi/bb:1`]);
  assert.equal(push.status, 0, push.stderr);
  assert.match(push.stdout, new RegExp(`digest: ${digest}`));
  const puts = proxy.seen.slice(seen0).filter((x) => x.method === 'PUT' && x.path.includes('/manifests/')).map((x) => x.path.split('/').pop());
  assert.deepEqual(puts, [child.digest, '1']);
  const remote = await new RegistryClient(proxy.host, { plainHttp: true }).getManifest('multi/bb', '1');
  assert.equal(remote.digest, digest, 'the index is stored with its exact bytes');
  assert.equal(remote.mediaType, MEDIA_TYPES.ociIndex);
  const root = join(tmp, 'h');
  const pull = await pier(root, ['pull', `${proxy.host}/multi/bb:1`]);
  assert.equal(pull.status, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(`digest: ${child.digest}`));
  const unpack = await pier(root, ['image', 'unpack', `${proxy.host}/multi/bb:1`, join(tmp, 'bundle-h')]);
  assert.equal(unpack.status, 0, unpack.stderr);

  // by digest alone: the index's digest, or the manifest's; the local name is host/repo@digest
  const byDigest = join(tmp, 'by-digest');
  for (const d of [digest, child.digest]) {
    const ref = `${proxy.host}/multi/bb@${d}`;
    const r = await pier(byDigest, ['pull', ref]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${ref}: digest: ${d}$`, 'm'));
    const img = await new ImageService({ root: byDigest }).resolve(ref);
    assert.equal(img.manifestDigest, child.digest, 'resolves to this platform\'s manifest');
  }
  const ls = await pier(byDigest, ['image', 'ls']);
  assert.equal(ls.status, 0, ls.stderr);
  assert.match(ls.stdout, /multi\/bb/);
  const rmi = await pier(byDigest, ['image', 'rm', `${proxy.host}/multi/bb@${digest}`]);
  assert.equal(rmi.status, 0, rmi.stderr);
  assert.throws(() => new ImageService({ root: byDigest }).refsFor(`${proxy.host}/multi/bb@${digest}`), /not found/);
  const wrong = await pier(byDigest, ['pull', `${proxy.host}/multi/bb@sha256:${'0'.repeat(64)}`]);
  assert.notEqual(wrong.status, 0);
  assert.equal(wrong.stderr.trim().split('\n').length, 1, wrong.stderr);
});

test('a multi-platform index: --all-platforms keeps it whole, --platform takes one, a missing platform is one line', async () => {
  const svc = new ImageService({ root: rootA });
  const amd = svc.refs.get('busybox:latest')!;
  const amdManifest = JSON.parse((await svc.content.readBytes(amd.digest)).toString());
  const { arm, cfg, layer } = await arm64Image(svc);
  const put = async (bytes: Buffer, mediaType: string) => {
    const d = { mediaType, digest: digestOf(bytes), size: bytes.length };
    await svc.content.write(bytes, { digest: d.digest, size: d.size });
    return d;
  };
  const index = await put(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex,
    manifests: [
      { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
  })), MEDIA_TYPES.ociIndex);
  await svc.refs.set('multi:2', index);
  const name = `${proxy.host}/multi/all:2`;
  const push = await pier(rootA, ['push', 'multi:2', name]);
  assert.equal(push.status, 0, push.stderr);
  const single = `${proxy.host}/multi/single:1`;
  assert.equal((await pier(rootA, ['push', 'busybox:latest', single])).status, 0);

  // --all-platforms: the name is the index; every platform's blobs are here; it pushes on whole
  const whole = join(tmp, 'all-platforms');
  const all = await pier(whole, ['pull', '--all-platforms', name]);
  assert.equal(all.status, 0, all.stderr);
  assert.match(all.stdout, new RegExp(`^${name}: digest: ${index.digest}$`, 'm'));
  const w = new ImageService({ root: whole });
  assert.equal(w.refs.get(name)?.digest, index.digest);
  for (const d of [amd.digest, arm.digest, cfg.digest, layer.digest, ...amdManifest.layers.map((l: { digest: string }) => l.digest)]) assert.ok(w.content.has(d), d);
  assert.equal((await w.resolve(name)).manifestDigest, amd.digest, 'runs use this host\'s platform');
  const again = await pier(whole, ['push', name, `${proxy.host}/multi/copy:2`]);
  assert.equal(again.status, 0, again.stderr);
  assert.equal((await new RegistryClient(proxy.host, { plainHttp: true }).getManifest('multi/copy', '2')).digest, index.digest);

  // --platform: that platform's manifest is named and only its blobs come
  const one = join(tmp, 'one-platform');
  const armPull = await pier(one, ['pull', '--platform', 'linux/arm64', name]);
  assert.equal(armPull.status, 0, armPull.stderr);
  assert.match(armPull.stdout, new RegExp(`digest: ${arm.digest}`));
  const o = new ImageService({ root: one });
  assert.equal(o.refs.get(name)?.digest, arm.digest);
  assert.ok(o.content.has(layer.digest));
  assert.equal(o.content.has(amd.digest), false);
  assert.equal((await o.list()).find((i) => i.ref === name)?.platform, 'linux/arm64/v8');

  // what cannot be had: one line, nothing tagged, no layer fetched
  const none = join(tmp, 'no-platform');
  const gets = () => proxy.seen.filter((x) => x.method === 'GET' && x.path.includes('/blobs/')).length;
  const g0 = gets();
  const cases: [string[], RegExp][] = [
    [['--platform', 'linux/s390x', name], /has no manifest for linux\/s390x \(it has linux\/amd64, linux\/arm64\/v8\)$/],
    [['--platform', 'linux/arm64', single], /is linux\/amd64, not linux\/arm64$/],
    [['--platform', 'arm64', name], /invalid platform "arm64": give os\/architecture\[\/variant\]/],
    [['--platform', 'linux/arm64', '--all-platforms', name], /give --platform or --all-platforms, not both$/],
  ];
  for (const [args, re] of cases) {
    const r = await pier(none, ['pull', ...args]);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr.trim(), re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.equal(gets() - g0, 1, 'only the lone manifest\'s config was fetched, to learn its platform');
  const refs = existsSync(join(none, 'images', 'index.json')) ? JSON.parse(readFileSync(join(none, 'images', 'index.json'), 'utf8')).manifests : [];
  assert.deepEqual(refs, [], 'nothing tagged');
});

test('pier manifest: create a list of local images, add, inspect here and remote, push it whole, rm', async () => {
  const svc = new ImageService({ root: rootA });
  const amd = svc.refs.get('busybox:latest')!;
  const { arm } = await arm64Image(svc);
  await svc.refs.set('bb-arm:1', arm);
  const create = await pier(rootA, ['manifest', 'create', 'made:3', 'busybox:latest', 'bb-arm:1']);
  assert.equal(create.status, 0, create.stderr);
  assert.match(create.stdout, /^made:3: sha256:[0-9a-f]{64} \(linux\/amd64, linux\/arm64\/v8\)\n$/);
  const local = JSON.parse((await pier(rootA, ['manifest', 'inspect', 'made:3'])).stdout);
  assert.equal(local.mediaType, MEDIA_TYPES.ociIndex);
  assert.deepEqual(local.manifests.map((m: { digest: string; platform: unknown }) => [m.digest, m.platform]),
    [[amd.digest, { os: 'linux', architecture: 'amd64' }], [arm.digest, { os: 'linux', architecture: 'arm64', variant: 'v8' }]]);
  // add: an image of a platform the list has replaces that entry
  const add = await pier(rootA, ['manifest', 'add', 'made:3', 'busybox:latest']);
  assert.equal(add.status, 0, add.stderr);
  assert.match(add.stdout, /\(linux\/arm64\/v8, linux\/amd64\)/);
  assert.equal((await svc.resolve('made:3')).manifestDigest, amd.digest, 'runs take this host\'s image');
  // push it whole; inspect it in the registry from a root that does not have it
  const dest = `${proxy.host}/multi/made:3`;
  const push = await pier(rootA, ['manifest', 'push', 'made:3', dest]);
  assert.equal(push.status, 0, push.stderr);
  const digest = svc.refs.get('made:3')!.digest;
  assert.match(push.stdout, new RegExp(`digest: ${digest}`));
  const remote = await pier(join(tmp, 'manifest-remote'), ['manifest', 'inspect', dest]);
  assert.equal(remote.status, 0, remote.stderr);
  assert.equal(JSON.parse(remote.stdout).manifests.length, 2);
  const rm = await pier(rootA, ['manifest', 'rm', 'made:3']);
  assert.equal(rm.stdout, 'Untagged: made:3\n');
  assert.ok(svc.refs.get('bb-arm:1'), 'the images in it stay');
  // wrong: one line each, nothing made
  const cases: [string[], RegExp][] = [
    [['create', 'busybox:latest', 'bb-arm:1'], /image "busybox:latest" already exists \(add to it with pier manifest add, or create --amend\)$/],
    [['add', 'busybox:latest', 'bb-arm:1'], /image "busybox:latest" is not a manifest list/],
    [['create', 'never:1', 'bb-arm:1', 'nope:1'], /image "nope:1" not found$/],
    [['inspect', 'nothing'], /image "nothing" not found here, and it names no registry$/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ];
  for (const [args, re] of cases) {
    const r = await pier(rootA, ['manifest', ...args]);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr.trim(), re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.equal(svc.refs.get('never:1'), undefined);
  await svc.refs.remove(['bb-arm:1']);
});

test('pier registry ls against docker-registry: its catalog and a repository\'s tags', async () => {
  for (const t of ['2', '1']) assert.equal((await pier(rootA, ['push', 'busybox:latest', `${proxy.host}/ls/bb:${t}`])).status, 0);
  const repos = await pier(rootA, ['registry', 'ls', proxy.host]);
  assert.equal(repos.status, 0, repos.stderr);
  assert.ok(repos.stdout.split('\n').includes('ls/bb'), repos.stdout);
  const tags = await pier(rootA, ['registry', 'ls', `${proxy.host}/ls/bb`]);
  assert.deepEqual(tags.stdout.split('\n').filter(Boolean).sort(), ['1', '2'], 'in the registry\'s order');
  const none = await pier(rootA, ['registry', 'ls', `${proxy.host}/no/such`]);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /^pier: registry ls: NAME_UNKNOWN: .*\n$/);
  const withTag = await pier(rootA, ['registry', 'ls', `${proxy.host}/ls/bb:1`]);
  assert.match(withTag.stderr, /give a repository without a tag or digest\n$/);
});

test('a pull interrupted (SIGINT, SIGTERM) mid-blob exits 130/143 and leaves no temp file, lease or tag', async () => {
  // A registry that sends half of each layer, then stalls, so the pull is caught mid-blob.
  const svc = new ImageService({ root: rootA });
  const desc = svc.refs.get('busybox:latest')!;
  const manifest = await svc.content.readBytes(desc.digest);
  const m = JSON.parse(manifest.toString());
  const blobs = new Map<string, Buffer>();
  for (const b of [m.config, ...m.layers]) blobs.set(b.digest, await svc.content.readBytes(b.digest));
  let halfSent!: () => void;
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    if (path === '/v2/') { res.writeHead(200); res.end('{}'); return; }
    if (path.includes('/manifests/')) { res.writeHead(200, { 'content-type': desc.mediaType, 'content-length': manifest.length }); res.end(manifest); return; }
    const data = blobs.get(path.split('/').pop()!);
    if (!data) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-length': data.length });
    if (data.length < 4096) { res.end(data); return; }
    res.write(data.subarray(0, data.length >> 1), () => halfSent());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (const [signal, code, native] of [['SIGINT', 130, '1'], ['SIGTERM', 143, '0']] as const) {
      const root = join(tmp, `interrupted-${signal}`);
      const sent = new Promise<void>((r) => { halfSent = r; });
      const c = spawn(join(TOP, 'bin', 'pier'), ['pull', `${host}/x/y:1`], { env: { ...process.env, PIER_ROOT: root, PIER_REGISTRY_NATIVE_IO: native }, stdio: 'ignore' });
      const exited = new Promise<number | null>((r) => c.on('exit', (status) => r(status)));
      await sent;
      // the body is under way into a temp file (the config's may not be renamed yet: one or two)
      for (let i = 0; i < 100 && readdirSync(join(root, 'images', 'ingest')).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(readdirSync(join(root, 'images', 'ingest')).length >= 1, 'a temp file while it pulls');
      c.kill(signal);
      assert.equal(await exited, code);
      assert.deepEqual(readdirSync(join(root, 'images', 'ingest')), [], signal);
      assert.deepEqual(readdirSync(join(root, 'images', 'leases')), []);
      assert.equal(new ImageService({ root }).refs.list().length, 0);
    }
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('a manifest naming a blob the registry lacks: the registry error code and message, one line', async () => {
  const client = new RegistryClient(reg.host, { plainHttp: true });
  const missing = digestOf('no such layer');
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: missing, size: 13 },
    layers: [],
  }));
  await assert.rejects(client.putManifest('broken/x', '1', bytes, MEDIA_TYPES.ociManifest), (err: Error) => {
    assert.match(err.message, /^(MANIFEST_BLOB_UNKNOWN|BLOB_UNKNOWN): [^\n]+$/);
    return true;
  });
});

test('a pull whose blob download fails leaves nothing tagged and no half-written blob', async () => {
  const root = join(tmp, 'i');
  proxy.fail = (req) => req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
  try {
    const r = await pier(root, ['pull', `${proxy.host}/library/busybox:latest`]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^pier: pull [^\n]*: UNKNOWN: injected failure[^\n]*\n$/);
  } finally {
    proxy.fail = undefined;
  }
  const refs = existsSync(join(root, 'images', 'index.json')) ? JSON.parse(readFileSync(join(root, 'images', 'index.json'), 'utf8')).manifests : [];
  assert.deepEqual(refs, []);
  const ingest = join(root, 'images', 'ingest');
  assert.deepEqual(existsSync(ingest) ? readdirSync(ingest) : [], []);
});

test('a large layer goes out by sendfile and comes back intact', async () => {
  assert.equal(typeof fsx().sendfile, 'function', 'the pierfs addon has sendfile (run scripts/setup)');
  const root = join(tmp, 'big');
  const svc = new ImageService({ root });
  svc.content.init();
  const layer = randomBytes((6 << 20) + 999);
  const l = await svc.content.write(layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [l.digest] } }));
  const c = await svc.content.write(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: c.digest, size: c.size },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.size }],
  }));
  const m = await svc.content.write(manifest);
  await svc.refs.set('big:1', { mediaType: MEDIA_TYPES.ociManifest, digest: m.digest, size: m.size });
  // straight to docker-registry, and through the proxy (which reads the body through Node)
  for (const host of [reg.host, proxy.host]) {
    const dest = parseRemoteReference(`${host}/big/${host === reg.host ? 'direct' : 'proxied'}:1`);
    const pushed = await new Pusher(new ImageService({ root }), dest, { plainHttp: true }).push('big:1');
    assert.deepEqual(pushed.blobs.map((b) => b.action).sort(), ['pushed', 'pushed']);
    const other = new ImageService({ root: join(tmp, `big-pull-${dest.repository.split('/')[1]}`) });
    const pulled = await new Puller(other, dest, { plainHttp: true }).pull();
    assert.equal(pulled.digest, m.digest);
    assert.ok(readFileSync(other.content.blobPath(l.digest)).equals(layer));
  }
});

test('a large blob body is read by the addon; a connection cut mid-body is an error, and the client carries on', async () => {
  const data = randomBytes((5 << 20) + 77);
  const d = digestOf(data);
  const srv = createServer((req, res) => {
    res.writeHead(200, { 'Content-Length': data.length, 'Docker-Content-Digest': d });
    if (req.url!.startsWith('/v2/cut/')) res.write(data.subarray(0, 2 << 20), () => setTimeout(() => res.destroy(), 20));
    else res.end(data);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const client = new RegistryClient(`127.0.0.1:${(srv.address() as AddressInfo).port}`, { plainHttp: true });
  const collect = async (repo: string) => {
    const res = await client.getBlob(repo, d);
    const taken = takeResponseBody(res as IncomingMessage, `blob ${d}`);
    const parts: Buffer[] = [];
    if (process.env.PIER_REGISTRY_NATIVE_IO === '0') {
      assert.equal(taken, undefined);
      try {
        for await (const c of res) parts.push(c as Buffer);
      } catch (err) {
        throw new PierError(`reading the body failed: ${(err as Error).message}`);
      }
      return Buffer.concat(parts);
    }
    assert.ok(taken, 'a large plain-HTTP body is taken');
    try { for await (const c of taken.chunks()) parts.push(c); } finally { taken.close(); }
    return Buffer.concat(parts);
  };
  try {
    assert.ok((await collect('whole')).equals(data));
    await assert.rejects(collect('cut'), (err: Error) => err instanceof PierError && /reading the body failed/.test(err.message));
    assert.ok((await collect('again')).equals(data), 'the next download works');
  } finally {
    client.close();
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('a large blob whose bytes do not match its digest fails the pull and is not stored', async () => {
  const layers = [randomBytes(3 << 20), randomBytes(2 << 20), randomBytes(5000), randomBytes(3 << 20)];
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: digestOf(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(l), size: l.length })),
  }));
  const blobs = new Map([config, ...layers].map((b) => [digestOf(b), b]));
  const bad = digestOf(layers[0]);
  let cut = false;
  const srv = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/' || url.endsWith('/manifests/1')) {
      const body = url === '/v2/' ? Buffer.from('{}') : manifest;
      res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociManifest, 'Content-Length': body.length });
      res.end(body);
      return;
    }
    const d = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url)?.[1];
    const b = d ? blobs.get(d) : undefined;
    if (!b) { res.writeHead(404, { 'Content-Length': 0 }); res.end(); return; }
    const body = d === bad ? Buffer.concat([b.subarray(0, b.length - 1), Buffer.from([b[b.length - 1] ^ 1])]) : b;
    res.writeHead(200, { 'Content-Length': body.length });
    if (cut && d === bad) res.write(body.subarray(0, 1 << 20), () => setTimeout(() => res.destroy(), 20));
    else res.end(body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const root = join(tmp, 'corrupt');
  try {
    const ref = parseRemoteReference(`127.0.0.1:${(srv.address() as AddressInfo).port}/x/y:1`);
    await assert.rejects(new Puller(new ImageService({ root }), ref, { plainHttp: true, concurrency: 1 }).pull(), (err: Error) => err instanceof PierError && err.message.includes(bad));
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
  const refs = existsSync(join(root, 'images', 'index.json')) ? JSON.parse(readFileSync(join(root, 'images', 'index.json'), 'utf8')).manifests : [];
  assert.deepEqual(refs, [], 'nothing tagged');
  assert.equal(existsSync(join(root, 'images', 'blobs', 'sha256', bad.slice(7))), false, 'the corrupt blob is not stored');
  assert.deepEqual(readdirSync(join(root, 'images', 'ingest')), [], 'no temp file left');
  // the same blob cut off mid-body: an error naming it, and again nothing left behind
  cut = true;
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const ref = parseRemoteReference(`127.0.0.1:${(srv.address() as AddressInfo).port}/x/y:1`);
    await assert.rejects(new Puller(new ImageService({ root }), ref, { plainHttp: true, concurrency: 1 }).pull(),
      (err: Error) => err instanceof PierError && err.message.includes(bad) && /reading the body failed|closed|reset/i.test(err.message));
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
  assert.equal(existsSync(join(root, 'images', 'blobs', 'sha256', bad.slice(7))), false);
  assert.deepEqual(readdirSync(join(root, 'images', 'ingest')), [], 'no temp file left after a cut');
});
