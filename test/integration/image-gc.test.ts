/**
 * `pier image prune` / ImageService.gc also sweeps unpacked layer snapshots no tagged image uses,
 * and keeps those that one does.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageService } from '../../src/image/index.ts';
import { Snapshotter } from '../../src/image/snapshot/index.ts';

const root = mkdtempSync(join(tmpdir(), 'pier-gc-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function unpack(svc: ImageService, ref: string): Promise<string> {
  const img = await svc.resolve(ref);
  const snap = new Snapshotter(join(svc.root, 'images'));
  return snap.unpack(img.manifest.layers.map((l, i) => ({
    diffId: img.config.rootfs.diff_ids[i], mediaType: l.mediaType, open: () => svc.content.readStream(l.digest),
  })));
}

test('snapshots of removed images go, those of kept images stay', async () => {
  const svc = new ImageService({ root });
  await svc.bootstrap('busybox');
  const src = join(root, 'tree');
  mkdirSync(src);
  writeFileSync(join(src, 'only-here'), 'x');
  const tar = join(root, 'tree.tar');
  execFileSync('tar', ['-C', src, '-cf', tar, '.']);
  await svc.importPath(tar, { ref: 'extra:1', format: 'rootfs' });
  const kept = await unpack(svc, 'busybox:latest');
  const gone = await unpack(svc, 'extra:1');
  const dir = (c: string) => join(root, 'images', 'snapshots', c.slice('sha256:'.length));
  assert.ok(existsSync(dir(kept)) && existsSync(dir(gone)));

  const dry = await svc.gc({ dryRun: true });
  assert.deepEqual(dry.snapshots, []);
  assert.ok(existsSync(dir(gone)), 'a dry run removes nothing');

  const r = await svc.remove('extra:1');
  assert.deepEqual(r.gc.snapshots, [gone]);
  assert.ok(!existsSync(dir(gone)));
  assert.ok(existsSync(dir(kept)));
});
