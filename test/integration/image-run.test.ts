/**
 * Images from outside run with pier-runtime: import (buildah / umoci / pier's own busybox), unpack
 * with the snapshotter, turn the config into a bundle, `pier-runtime run`. Needs the built runtime
 * (bin/pier-runtime over dist/, made by scripts/build.mjs) and root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageService } from '../../src/image/index.ts';
import { Snapshotter } from '../../src/image/snapshot/index.ts';
import { imageSpec, writeBundle } from '../../src/image/bundle.ts';
import { cleanup, tempDir } from '../helpers/image.ts';

const TOP = join(import.meta.dirname, '..', '..');
const RUNTIME = join(TOP, 'bin', 'pier-runtime');
const ready = existsSync(RUNTIME) && spawnSync(RUNTIME, ['--version']).status === 0 && process.getuid?.() === 0;
const skip = ready ? false : 'needs root and the built runtime (node scripts/build.mjs)';
let work = '';

before(() => { work = tempDir('pier-image-run-'); });
after(() => cleanup(work));

async function runImage(svc: ImageService, ref: string, args: string[] | undefined, id: string): Promise<string> {
  const img = await svc.resolve(ref);
  const snap = new Snapshotter(svc.content.root);
  const chainId = await snap.unpack(img.manifest.layers.map((l, i) => ({
    diffId: img.config.rootfs.diff_ids[i], mediaType: l.mediaType, open: () => svc.content.readStream(l.digest),
  })));
  const { rootfs } = await snap.prepare(id, chainId);
  try {
    const bundle = join(work, 'bundles', id);
    writeBundle(bundle, imageSpec(img.config, { rootfs, args }));
    const r = spawnSync(RUNTIME, ['--root', join(work, 'state'), 'run', '--bundle', bundle, id], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `pier-runtime run ${id}: ${r.stderr}`);
    return r.stdout;
  } finally {
    spawnSync(RUNTIME, ['--root', join(work, 'state'), 'delete', '--force', id]);
    await snap.remove(id);
  }
}

test('busybox bootstrap runs', { skip }, async () => {
  const svc = new ImageService({ root: join(work, 'root') });
  await svc.bootstrap('busybox');
  assert.equal(await runImage(svc, 'busybox', ['sh', '-c', 'echo hello from $(cat /etc/passwd | head -c 4)'], 'bb'), 'hello from root\n');
});

test('a buildah-made image runs (its file on top of busybox via COPY --from)', { skip: skip || (spawnSync('sh', ['-c', 'command -v buildah']).status !== 0 ? 'no buildah' : false) }, async () => {
  const svc = new ImageService({ root: join(work, 'root') });
  await svc.bootstrap('busybox');
  // buildah cannot pull here (no registry): hand it pier's busybox as an oci-archive base.
  await svc.export(['busybox'], join(work, 'bb.tar'), { format: 'oci-archive' });
  const ctx = join(work, 'ctx');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'msg'), 'built by buildah\n');
  writeFileSync(join(ctx, 'Containerfile'), `FROM oci-archive:${join(work, 'bb.tar')}\nCOPY msg /msg\nCMD ["cat", "/msg"]\n`);
  const common = ['--root', join(work, 'buildah-root'), '--runroot', join(work, 'buildah-run'), '--storage-driver', 'vfs'];
  const b = spawnSync('buildah', [...common, 'bud', '--isolation', 'chroot', '-t', 'localhost/runme:1', '-f', join(ctx, 'Containerfile'), ctx], { encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
  const p = spawnSync('buildah', [...common, 'push', 'localhost/runme:1', `oci-archive:${join(work, 'runme.tar')}`], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  await svc.importPath(join(work, 'runme.tar'), { ref: 'runme:1' });
  assert.equal(await runImage(svc, 'runme:1', undefined, 'bh'), 'built by buildah\n');
});
