/**
 * pier build's layer cache: a rebuild with nothing changed is all hits (same image ID), changing a
 * copied file misses from that step on, --build-arg changes miss from the ARG on, .dockerignored
 * files neither reach the image nor the cache key. Needs root (RUN containers) and busybox-static.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ImageService } from '../../src/image/index.ts';
import { build, type BuildOptions, type BuildResult } from '../../src/image/build/index.ts';
import { cleanup, tempDir } from '../helpers/image.ts';

const skip = process.getuid?.() === 0 && existsSync('/bin/busybox') ? false : 'needs root and /bin/busybox (busybox-static)';
let work = '';
let svc: ImageService;
let ctx = '';

before(async () => {
  work = tempDir('pier-build-cache-');
  if (skip) return;
  svc = new ImageService({ root: join(work, 'root') });
  await svc.bootstrap('busybox');
  ctx = join(work, 'ctx');
  mkdirSync(join(ctx, 'app', 'cache'), { recursive: true });
  writeFileSync(join(ctx, 'Containerfile'), [
    'FROM busybox',
    'ARG MODE=dev',
    'RUN echo base > /base.txt',
    'COPY first.txt /first.txt',
    'RUN cat /first.txt > /derived.txt',
    'COPY app/ /app/',
    'ENV MODE=$MODE',
    'CMD ["cat", "/derived.txt"]',
    '',
  ].join('\n'));
  writeFileSync(join(ctx, 'first.txt'), 'one\n');
  writeFileSync(join(ctx, 'app', 'main.sh'), 'echo main\n');
  writeFileSync(join(ctx, 'app', 'cache', 'junk'), 'junk\n');
  writeFileSync(join(ctx, 'app', 'secret.key'), 'secret\n');
  writeFileSync(join(ctx, '.dockerignore'), '# not in the image\napp/cache\n**/*.key\n');
});
after(() => cleanup(work));

async function b(opts: Partial<BuildOptions> = {}): Promise<BuildResult> {
  const fd = openSync(join(work, 'run.out'), 'a');
  try {
    return await build(svc, { context: ctx, tags: ['cache:1'], runOutput: [fd, fd], ...opts });
  } finally {
    closeSync(fd);
  }
}

/** The 7 instruction steps (FROM is not a cache step), as hit/miss. */
const hits = (r: BuildResult) => r.steps.map((s) => s.cached);

test('a rebuild with nothing changed is all cache hits, with the same image ID', { skip }, async () => {
  const first = await b();
  assert.deepEqual(hits(first), [false, false, false, false, false, false, false]);
  const again = await b();
  assert.deepEqual(hits(again), [true, true, true, true, true, true, true]);
  assert.equal(again.id, first.id);
});

test('changing a copied file misses from that step on', { skip }, async () => {
  const before = await b();
  writeFileSync(join(ctx, 'first.txt'), 'two\n');
  const changed = await b();
  // ARG, RUN hit; COPY first.txt misses and everything after it.
  assert.deepEqual(hits(changed), [true, true, false, false, false, false, false]);
  assert.notEqual(changed.id, before.id);
  // A mode change is a change too.
  const { chmodSync } = await import('node:fs');
  chmodSync(join(ctx, 'app', 'main.sh'), 0o755);
  assert.deepEqual(hits(await b()), [true, true, true, true, false, false, false]);
});

test('.dockerignore keeps files out of the image and out of the cache key', { skip }, async () => {
  await b();
  writeFileSync(join(ctx, 'app', 'cache', 'junk'), 'changed junk\n');
  writeFileSync(join(ctx, 'app', 'secret.key'), 'changed secret\n');
  const r = await b();
  assert.ok(hits(r).every(Boolean), 'ignored files do not invalidate the cache');
  const img = await svc.resolve('cache:1');
  // busybox, RUN, COPY first.txt, RUN, COPY app/
  const appLayer = img.manifest.layers[4];
  const tar = gunzipSync(await svc.content.readBytes(appLayer.digest)).toString('latin1');
  assert.match(tar, /app\/main\.sh/);
  assert.doesNotMatch(tar, /junk|secret\.key/);
});

test('a different --build-arg misses from the ARG step on; unused build-args warn', { skip }, async () => {
  await b();
  const warnings: string[] = [];
  const r = await b({ buildArgs: { MODE: 'prod', NOPE: 'x' }, warn: (m) => warnings.push(m) });
  assert.deepEqual(hits(r), [false, false, false, false, false, false, false]);
  assert.deepEqual(warnings, ['one or more build-args [NOPE] were not consumed']);
  const img = await svc.resolve('cache:1');
  assert.ok(img.config.config?.Env?.includes('MODE=prod'));
  assert.equal(hits(await b({ buildArgs: { MODE: 'prod' } })).every(Boolean), true);
  assert.equal(hits(await b({ noCache: true })).some(Boolean), false, '--no-cache runs every step');
});

test('the RUN network mode is not part of any cache key', { skip }, async () => {
  const first = await b({ network: 'none' });
  for (const network of ['host', 'none'] as const) {
    const again = await b({ network });
    assert.ok(hits(again).every(Boolean), `network ${network}: every step a cache hit`);
    assert.equal(again.id, first.id);
  }
});

test('a context symlink is hashed as a link: what it points to outside the context is never read', { skip }, async () => {
  const outside = join(work, 'outside.txt');
  writeFileSync(outside, 'v1\n');
  const { symlinkSync, rmSync } = await import('node:fs');
  symlinkSync(outside, join(ctx, 'app', 'link'));
  try {
    await b();
    writeFileSync(outside, 'v2, a change the build must not see\n');
    assert.ok(hits(await b()).every(Boolean), 'the target outside the context changed the cache key');
  } finally {
    rmSync(join(ctx, 'app', 'link'));
  }
});
