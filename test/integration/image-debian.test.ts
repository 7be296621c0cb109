/**
 * `pier image bootstrap debian`: debootstrap --variant=minbase bookworm from the machine's apt
 * mirror. The debootstrapped tree is cached in /var/cache/pier-test so later runs only re-pack it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { ImageService } from '../../src/image/index.ts';
import { mirrorFromApt } from '../../src/image/bootstrap/debian.ts';
import { cleanup, tempDir } from '../helpers/image.ts';

const CACHE = '/var/cache/pier-test';
const haveDebootstrap = spawnSync('sh', ['-c', 'command -v debootstrap || test -x /usr/sbin/debootstrap']).status === 0;

test('bootstrap debian makes a one-layer debian:bookworm without apt lists or caches',
  { skip: !haveDebootstrap || process.getuid?.() !== 0 ? 'needs root and debootstrap' : false, timeout: 15 * 60_000 }, async () => {
    assert.ok(mirrorFromApt('bookworm'), 'the machine has an apt mirror for bookworm');
    const dir = tempDir();
    try {
      const svc = new ImageService({ root: dir });
      const got = await svc.bootstrap('debian', { cacheDir: CACHE });
      assert.equal(got.ref, 'debian:bookworm');
      const img = await svc.resolve('debian:bookworm');
      assert.equal(img.manifest.layers.length, 1);
      assert.deepEqual(img.config.config?.Cmd, ['bash']);
      const names = new Set<string>();
      const ex = extract();
      const done = new Promise<void>((resolve, reject) => {
        ex.on('entry', (h, s, next) => { names.add(h.name.replace(/^\.?\//, '').replace(/\/$/, '')); s.on('end', () => next()); s.resume(); });
        ex.on('finish', () => resolve());
        ex.on('error', reject);
      });
      svc.content.readStream(img.manifest.layers[0].digest).pipe(createGunzip()).pipe(ex as unknown as NodeJS.WritableStream);
      await done;
      for (const must of ['usr/bin/apt-get', 'etc/debian_version', 'usr/bin/bash']) assert.ok(names.has(must), must);
      assert.ok(![...names].some((n) => /^var\/lib\/apt\/lists\/[^/]+_Packages/.test(n)), 'apt lists stripped');
      assert.ok(![...names].some((n) => /^var\/cache\/apt\/archives\/.*\.deb$/.test(n)), 'apt caches stripped');
      assert.ok(!names.has('.pier-debootstrap-done'), 'the cache marker stays out of the image');
    } finally { cleanup(dir); }
  });

test('bootstrap debian fails clearly with a bad mirror', { skip: !haveDebootstrap || process.getuid?.() !== 0 }, async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    await assert.rejects(svc.bootstrap('debian', { mirror: 'http://127.0.0.1:9/debian' }), /debootstrap bookworm from http:\/\/127\.0\.0\.1:9\/debian failed \(exit \d+\)/);
    assert.deepEqual(svc.refs.list(), []);
  } finally { cleanup(dir); }
});
