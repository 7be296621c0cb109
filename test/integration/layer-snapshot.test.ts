import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer, diffUpper, packDirectory } from '../../src/image/layer/index.ts';
import { Snapshotter, type LayerSource } from '../../src/image/snapshot/index.ts';
import { imageSpec, writeBundle } from '../../src/image/bundle.ts';
import { fsx } from '../../src/common/fsx.ts';
import { makeTar } from '../helpers/layers.ts';

const work = mkdtempSync(join(tmpdir(), 'pier-snap-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

function mounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
}

async function layers(): Promise<(LayerSource & { opens: number })[]> {
  const tars = [
    await makeTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
      { name: 'etc/group', body: 'root:x:0:\napp:x:1000:\nwheel:x:10:app\n' }, { name: 'a/', type: 'directory' }, { name: 'a/old', body: 'old' }, { name: 'gone', body: 'g' }]),
    await makeTar([{ name: 'a/', type: 'directory' }, { name: 'a/.wh..wh..opq', body: '' }, { name: 'a/new', body: 'new' }, { name: '.wh.gone', body: '' }]),
  ];
  const { createHash } = await import('node:crypto');
  return tars.map((t) => {
    const l = { diffId: `sha256:${createHash('sha256').update(t).digest('hex')}`, mediaType: 'application/vnd.oci.image.layer.v1.tar', opens: 0,
      open(): Readable { l.opens++; return Readable.from([t], { objectMode: false }); } };
    return l;
  });
}

for (const mode of ['overlay', 'copy'] as const) {
  test(`snapshotter (${mode}): unpack once, prepare, remove`, async () => {
    const root = join(work, mode);
    const snap = new Snapshotter(root, { mode });
    const ls = await layers();
    const top = await snap.unpack(ls);
    assert.deepEqual(ls.map((l) => l.opens), [1, 1]);
    assert.equal(await snap.unpack(ls), top);
    assert.deepEqual(ls.map((l) => l.opens), [1, 1], 'a second unpack does no work');
    assert.equal(snap.list().length, 2);
    assert.ok(readdirSync(join(root, 'snapshots')).every((n) => !n.startsWith('.tmp-')));

    const p = await snap.prepare('c1', top);
    assert.deepEqual(readdirSync(join(p.rootfs, 'a')), ['new']);
    assert.equal(existsSync(join(p.rootfs, 'gone')), false);
    assert.equal(mounted(p.rootfs), mode === 'overlay');
    writeFileSync(join(p.rootfs, 'a/mine'), 'm');
    const ro = await snap.prepare('ro', top, { readonly: true });
    assert.throws(() => writeFileSync(join(ro.rootfs, 'x'), 'x'), /EROFS/);
    assert.deepEqual(readdirSync(join(ro.rootfs, 'a')), ['new'], 'mounts are independent');

    const spec = imageSpec({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ls.map((l) => l.diffId) },
      config: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hi'], Env: ['A=1'], User: 'app', WorkingDir: '/a', StopSignal: 'SIGQUIT' } }, { rootfs: p.rootfs, env: ['A=2'] });
    assert.deepEqual(spec.process!.args, ['/bin/sh', '-c', 'echo hi']);
    assert.ok(spec.process!.env!.includes('A=2') && !spec.process!.env!.includes('A=1') && spec.process!.env!.some((e) => e.startsWith('PATH=')));
    assert.deepEqual(spec.process!.user, { uid: 1000, gid: 1000, additionalGids: [10] });
    assert.equal(spec.process!.cwd, '/a');
    assert.equal(spec.annotations!['org.opencontainers.image.stopSignal'], 'SIGQUIT');
    assert.equal(spec.root!.path, p.rootfs);
    const cfg = writeBundle(join(work, `bundle-${mode}`), spec);
    assert.deepEqual(JSON.parse(readFileSync(cfg, 'utf8')), spec);

    assert.ok(snap.usage().snapshots.length === 2);
    assert.deepEqual(snap.prune([]), [], 'snapshots under a prepared mount are kept');
    await snap.remove('c1');
    await snap.remove('ro');
    assert.equal(mounted(p.rootfs), false);
    assert.equal(existsSync(join(root, 'mounts', 'c1')), false);
    assert.deepEqual(snap.prune([top]), [], 'a kept chain keeps its parent');
    assert.equal(snap.prune([]).length, 2);
    assert.equal(snap.list().length, 0);
  });
}

test('diffUpper turns a real overlay upper dir back into a layer', async () => {
  const lower = join(work, 'lower');
  mkdirSync(join(lower, 'd/sub'), { recursive: true });
  writeFileSync(join(lower, 'd/sub/f'), 'f');
  writeFileSync(join(lower, 'd/keep'), 'k');
  writeFileSync(join(lower, 'del'), 'x');
  const snap = new Snapshotter(join(work, 'diff'), { mode: 'overlay' });
  await packDirectory(lower, join(work, 'lower.tar'), { compression: 'none' });
  const { createHash } = await import('node:crypto');
  const diffId = `sha256:${createHash('sha256').update(readFileSync(join(work, 'lower.tar'))).digest('hex')}`;
  const top = await snap.unpack([{ diffId, mediaType: 'x', open: () => createReadStream(join(work, 'lower.tar')) }]);
  const p = await snap.prepare('w', top);
  rmSync(join(p.rootfs, 'del'));
  rmSync(join(p.rootfs, 'd/sub'), { recursive: true });
  mkdirSync(join(p.rootfs, 'd/sub'));
  writeFileSync(join(p.rootfs, 'd/sub/new'), 'n');
  writeFileSync(join(p.rootfs, 'added'), 'a');
  assert.ok(lstatSync(join(p.upper!, 'del')).isCharacterDevice());
  const blob = await diffUpper(p.upper!, join(work, 'diff.tar'), { compression: 'gzip' });
  await snap.remove('w');
  const { execFileSync } = await import('node:child_process');
  const names = execFileSync('tar', ['-tzf', join(work, 'diff.tar')], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(names, ['.wh.del', 'added', 'd/', 'd/sub/', 'd/sub/.wh..wh..opq', 'd/sub/new']);
  // Applying lower + diff gives what the container saw.
  const merged = join(work, 'merged');
  mkdirSync(merged);
  await applyLayer(createReadStream(join(work, 'lower.tar')), merged, { format: 'apply' });
  const r = await applyLayer(createReadStream(join(work, 'diff.tar')), merged, { format: 'apply' });
  assert.equal(r.diffId, blob.diffId);
  assert.deepEqual(readdirSync(merged).sort(), ['added', 'd']);
  assert.deepEqual(readdirSync(join(merged, 'd')).sort(), ['keep', 'sub']);
  assert.deepEqual(readdirSync(join(merged, 'd/sub')), ['new']);
  assert.equal(fsx().llistxattr(join(merged, 'd/sub')).length, 0);
});
