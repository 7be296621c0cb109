/**
 * Images from outside run with pier-runtime: import (buildah / umoci / pier's own busybox), unpack
 * with the snapshotter, turn the config into a bundle, `pier-runtime run`. Needs the built runtime
 * (bin/pier-runtime over dist/, made by scripts/build.mjs) and root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageService } from '../../src/image/index.ts';
import { Snapshotter } from '../../src/image/snapshot/index.ts';
import { imageSpec, writeBundle } from '../../src/image/bundle.ts';
import { cleanup, tempDir } from '../helpers/image.ts';
import { ROOTFS_MOUNTS_ANNOTATION } from '../../src/runtime/index.ts';

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

test('a rootfs as mounts (data) is mounted only in the container: the host never holds it, the upper keeps the writes', { skip }, async () => {
  const svc = new ImageService({ root: join(work, 'root') });
  await svc.bootstrap('busybox');
  const id = 'asdata';
  const p = await svc.prepareRootfsMounts('busybox', id);
  try {
    assert.ok(p.mounts.length >= 1 && p.mounts.every((m) => m.type === 'overlay' || m.type === 'bind'), JSON.stringify(p.mounts));
    assert.deepEqual(svc.rootfsMounts(id)?.mounts, p.mounts, 'the mounts are kept with the key');
    const hostMounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === p.rootfs);
    assert.deepEqual(hostMounts(), [], 'nothing mounted on the host by prepareRootfsMounts');
    const img = await svc.resolve('busybox');
    const bundle = join(work, 'bundles', id);
    // the container tells whether the host has its rootfs mounted, while it runs
    const spec = imageSpec(img.config, { rootfs: p.rootfs, args: ['sh', '-c', `echo written > /new; ls /bin/busybox; until [ -f /go ]; do usleep 20000; done; echo done`] });
    spec.annotations = { ...spec.annotations, [ROOTFS_MOUNTS_ANNOTATION]: JSON.stringify(p.mounts) };
    writeBundle(bundle, spec);
    const go = join(p.rootfs, 'go');
    const child = spawn(RUNTIME, ['--root', join(work, 'state'), 'run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => { out += d; });
    child.stderr.on('data', (d: Buffer) => { err += d; });
    const exited = new Promise<number | null>((r) => child.on('close', r));
    // wait until it runs (its write shows in the upper dir), then look at the host's mount table
    for (let i = 0; i < 200 && !(p.upper && existsSync(join(p.upper, 'new'))); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(p.upper && existsSync(join(p.upper, 'new')), `the container wrote through its overlay: ${err}`);
    assert.deepEqual(hostMounts(), [], 'the running container\'s rootfs is not in the host mount table');
    assert.equal(existsSync(go), false, 'the host dir under the mount is empty');
    // the file it waits for is made through /proc/<pid>/root: the host reaches the tree only by the container
    const sr = spawnSync(RUNTIME, ['--root', join(work, 'state'), 'state', id], { encoding: 'utf8' });
    assert.equal(sr.status, 0, `state: ${sr.stderr}`);
    const st = JSON.parse(sr.stdout) as { pid: number };
    writeFileSync(`/proc/${st.pid}/root/go`, 'x\n');
    assert.equal(await exited, 0, err);
    assert.equal(out, '/bin/busybox\ndone\n');
    assert.equal(readFileSync(join(p.upper!, 'new'), 'utf8'), 'written\n');
  } finally {
    spawnSync(RUNTIME, ['--root', join(work, 'state'), 'delete', '--force', id]);
    await svc.removeRootfs(id);
  }
});

test('a malformed rootfs-mounts annotation is refused by create, and nothing is left', { skip }, async () => {
  const svc = new ImageService({ root: join(work, 'root') });
  await svc.bootstrap('busybox');
  const img = await svc.resolve('busybox');
  const bundle = join(work, 'bundles', 'badmounts');
  mkdirSync(join(bundle, 'rootfs'), { recursive: true });
  const spec = imageSpec(img.config, { rootfs: join(bundle, 'rootfs'), args: ['true'] });
  spec.annotations = { [ROOTFS_MOUNTS_ANNOTATION]: JSON.stringify([{ type: 'tmpfs', source: 'x', options: [] }]) };
  writeBundle(bundle, spec);
  const r = spawnSync(RUNTIME, ['--root', join(work, 'state'), 'create', '--bundle', bundle, 'badmounts'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /annotation io\.pier\.rootfs\.mounts: mount 0: type must be "overlay" or "bind"/);
  assert.equal(existsSync(join(work, 'state', 'badmounts')), false, 'no state dir');
});
