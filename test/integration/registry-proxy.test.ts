/**
 * `pier registry serve --proxy-remote`: a pull-through cache in front of Debian's docker-registry
 * (with basic auth, so the cache logs in), watched through a counting proxy: images come through
 * byte for byte and are kept, one upstream fetch per blob, a moved tag is followed, the cache
 * answers while upstream fails, pushes and deletes are refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pierAsync as pier } from '../helpers/pier.ts';
import { arm64Image } from '../helpers/image.ts';
import { startProxy, startRegistry as startDistribution, type Proxy, type Registry } from '../helpers/registry.ts';
import { startRegistry, type RunningRegistry } from '../../src/registry/server/index.ts';
import { ImageService } from '../../src/image/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pier-regproxy-'));
const root = join(tmp, 'root');
let upstream: Registry;
let watch: Proxy;
let mirror: RunningRegistry;
let busybox = '';

const blobGets = (digest?: string) => watch.seen.filter((s) => s.method === 'GET' && s.path.includes('/blobs/') && (!digest || s.path.endsWith(digest))).length;
const manifestGets = () => watch.seen.filter((s) => s.method === 'GET' && s.path.includes('/manifests/')).length;

before(async () => {
  upstream = await startDistribution(join(tmp, 'upstream'), { htpasswd: ['alice', 'alice-pw'] });
  watch = await startProxy(upstream.host);
  mirror = await startRegistry({ listen: '127.0.0.1:0', storage: join(tmp, 'mirror'), proxy: { remote: `http://${watch.host}`, credentials: { username: 'alice', password: 'alice-pw' } } });
  const svc = new ImageService({ root });
  busybox = (await svc.bootstrap('busybox')).descriptor.digest;
  assert.equal((await pier(root, ['login', upstream.host, '-u', 'alice', '-p', 'alice-pw'])).status, 0);
  const push = await pier(root, ['push', 'busybox:latest', `${upstream.host}/lib/bb:1`]);
  assert.equal(push.status, 0, push.stderr);
});

after(async () => {
  await mirror?.close();
  await watch?.stop();
  await upstream?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('a pull through the cache: upstream\'s image byte for byte, kept, one upstream fetch per blob', async () => {
  const [a, b] = await Promise.all([pier(join(tmp, 'a'), ['pull', `${mirror.host}/lib/bb:1`]), pier(join(tmp, 'b'), ['pull', `${mirror.host}/lib/bb:1`])]);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  assert.match(a.stdout, new RegExp(`digest: ${busybox}`));
  const layer = JSON.parse((await new ImageService({ root }).content.readBytes(busybox)).toString()).layers[0].digest as string;
  assert.equal(blobGets(layer), 1, 'two clients at once, one upstream fetch');
  // a third client: blobs from the cache; the tag is asked upstream again (it may have moved)
  const manifests = manifestGets();
  const blobs = blobGets();
  const c = await pier(join(tmp, 'c'), ['pull', `${mirror.host}/lib/bb:1`]);
  assert.equal(c.status, 0, c.stderr);
  assert.equal(blobGets(), blobs);
  assert.equal(manifestGets(), manifests + 1);
  // and by digest: from the cache alone
  const d = await pier(join(tmp, 'd'), ['pull', `${mirror.host}/lib/bb@${busybox}`]);
  assert.equal(d.status, 0, d.stderr);
  assert.equal(manifestGets(), manifests + 1);
});

test('a tag moved upstream is followed', async () => {
  const svc = new ImageService({ root });
  const { arm } = await arm64Image(svc);
  await svc.refs.set('bb-arm:1', arm);
  assert.equal((await pier(root, ['push', 'bb-arm:1', `${upstream.host}/lib/bb:1`])).status, 0);
  const r = await pier(join(tmp, 'moved'), ['pull', '--platform', 'linux/arm64', `${mirror.host}/lib/bb:1`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`digest: ${arm.digest}`));
  assert.equal((await pier(root, ['push', 'busybox:latest', `${upstream.host}/lib/bb:1`])).status, 0);
});

test('upstream failing: what is cached is served, the rest is one UNAVAILABLE line; unknown upstream images are 404', async () => {
  assert.equal((await pier(join(tmp, 'warm'), ['pull', `${mirror.host}/lib/bb:1`])).status, 0);
  watch.fail = () => true;
  try {
    const cached = await pier(join(tmp, 'down'), ['pull', `${mirror.host}/lib/bb:1`]);
    assert.equal(cached.status, 0, cached.stderr);
    assert.match(cached.stdout, new RegExp(`digest: ${busybox}`));
    const other = await pier(join(tmp, 'down2'), ['pull', `${mirror.host}/lib/other:1`]);
    assert.equal(other.status, 1);
    assert.match(other.stderr, /^pier: pull \S+: UNAVAILABLE: upstream http:\/\/\S+ could not serve manifest lib\/other:1: [^\n]+\n$/);
  } finally {
    watch.fail = undefined;
  }
  const unknown = await pier(join(tmp, 'none'), ['pull', `${mirror.host}/lib/none:1`]);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /^pier: pull \S+: MANIFEST_UNKNOWN: http:\/\/\S+ has no manifest lib\/none:1 \(manifest lib\/none:1\)\n$/);
});

test('pushes and deletes are refused; a bad --proxy-remote is one line and makes nothing', async () => {
  const push = await pier(root, ['push', 'busybox:latest', `${mirror.host}/lib/mine:1`]);
  assert.equal(push.status, 1);
  assert.match(push.stderr, /UNSUPPORTED: (HEAD|POST|PUT): this registry is a pull-through cache of http:\/\/\S+ and takes no pushes or deletes/);
  const del = await fetch(`${mirror.url}/v2/lib/bb/manifests/1`, { method: 'DELETE' });
  assert.equal(del.status, 405);
  assert.equal(((await del.json()) as { errors: { code: string }[] }).errors[0].code, 'UNSUPPORTED');
  const storage = join(tmp, 'never-made');
  for (const remote of ['ftp://x', 'http://h/path', 'not a url']) {
    const r = await pier(root, ['registry', 'serve', '--listen', '127.0.0.1:0', '--storage', storage, '--proxy-remote', remote]);
    assert.equal(r.status, 1, remote);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    assert.match(r.stderr, /--proxy-remote/);
  }
  assert.equal(existsSync(storage), false);
});
