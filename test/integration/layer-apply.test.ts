import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync, chownSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { applyLayer, packDirectory, type Compression } from '../../src/image/layer/index.ts';
import { fsx } from '../../src/common/fsx.ts';
import { PierError } from '../../src/common/errors.ts';
import { listTree, makeTar, streamOf } from '../helpers/layers.ts';

const work = mkdtempSync(join(tmpdir(), 'pier-layer-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
let n = 0;
const fresh = (name = 'd') => { const d = join(work, `${name}${n++}`); mkdirSync(d); return d; };

/** A tree with every kind of node a layer carries. */
function sampleTree(): string {
  const d = fresh('src');
  const f = fsx();
  mkdirSync(join(d, 'etc'));
  writeFileSync(join(d, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  mkdirSync(join(d, 'usr/lib'), { recursive: true });
  symlinkSync('usr/lib', join(d, 'lib'));
  writeFileSync(join(d, 'usr/lib/big'), Buffer.alloc(3 << 20, 7));
  linkSync(join(d, 'usr/lib/big'), join(d, 'usr/lib/big-link'));
  writeFileSync(join(d, 'usr/lib/suid'), '#!/bin/sh\n');
  chownSync(join(d, 'usr/lib/suid'), 1000, 1001);
  chmodSync(join(d, 'usr/lib/suid'), 0o4750);
  f.lsetxattr(join(d, 'usr/lib/suid'), 'user.bin', Buffer.from([0, 1, 2, 0xff]));
  f.lsetxattr(join(d, 'usr/lib/suid'), 'security.capability', Buffer.from('0100000200200000000000000000000000000000', 'hex'));
  mkdirSync(join(d, 'dev'));
  f.mknod(join(d, "dev/null"), 0o020666, f.makedev(1, 3));
  chmodSync(join(d, "dev/null"), 0o666);
  f.mknod(join(d, 'dev/sda'), 0o060660, f.makedev(8, 0));
  f.mkfifo(join(d, 'dev/fifo'), 0o600);
  symlinkSync('/proc/self/fd', join(d, 'dev/fd'));
  mkdirSync(join(d, 'tmp'), { mode: 0o1777 });
  chmodSync(join(d, 'tmp'), 0o1777);
  for (const p of ['etc/passwd', 'usr/lib/big', 'usr/lib/suid', 'dev/fifo', 'etc', 'usr/lib', 'usr', 'tmp', 'dev']) utimesSync(join(d, p), 1_500_000_000, 1_500_000_000 + p.length);
  return d;
}

for (const compression of ['gzip', 'zstd', 'none'] as Compression[]) {
  test(`pack → apply round trip (${compression}) keeps every node's metadata`, async () => {
    const src = sampleTree();
    const blob = await packDirectory(src, join(work, `l-${compression}`), { compression });
    const bytes = readFileSync(join(work, `l-${compression}`));
    assert.equal(blob.digest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    assert.equal(blob.size, bytes.length);
    assert.match(blob.mediaType, compression === 'none' ? /layer\.v1\.tar$/ : new RegExp(`\\+${compression}$`));
    for (const format of ['overlay', 'apply'] as const) {
      const dst = fresh();
      const r = await applyLayer(createReadStream(join(work, `l-${compression}`)), dst, { format });
      assert.equal(r.diffId, blob.diffId);
      assert.equal(r.entries, 14);
      assert.deepEqual(listTree(dst).slice(1), listTree(src).slice(1));
      assert.equal(lstatSync(join(dst, 'usr/lib/big')).ino, lstatSync(join(dst, 'usr/lib/big-link')).ino);
    }
  });
}

test('GNU tar reads what we pack', async () => {
  const src = sampleTree();
  await packDirectory(src, join(work, 'gnu.tar'), { compression: 'none' });
  const listing = execFileSync('tar', ['-tvf', join(work, 'gnu.tar')], { encoding: 'utf8' });
  assert.match(listing, /^-rwsr-x--- 1000\/1001 .* usr\/lib\/suid$/m);
  assert.match(listing, /^hrw-r--r-- .* usr\/lib\/big-link link to usr\/lib\/big$/m);
  assert.match(listing, /^crw-rw-rw- 0\/0 +1,3 .* dev\/null$/m);
});

test('SOURCE_DATE_EPOCH packs are byte-identical and clamp mtimes', async () => {
  const a = sampleTree();
  const b = sampleTree();
  utimesSync(join(b, 'etc/passwd'), 1_900_000_000, 1_900_000_000); // newer than the epoch: clamped away
  utimesSync(join(a, 'etc/passwd'), 1_800_000_000, 1_800_000_000);
  const epoch = 1_600_000_000;
  for (const compression of ['gzip', 'zstd'] as Compression[]) {
    const x = await packDirectory(a, join(work, `a.${compression}`), { compression, sourceDateEpoch: epoch });
    const y = await packDirectory(b, join(work, `b.${compression}`), { compression, sourceDateEpoch: epoch });
    assert.equal(x.digest, y.digest);
    assert.deepEqual(readFileSync(join(work, `a.${compression}`)), readFileSync(join(work, `b.${compression}`)));
  }
  const c = await packDirectory(a, join(work, 'c.gz'), { compression: 'gzip' });
  const d = await packDirectory(b, join(work, 'd.gz'), { compression: 'gzip' });
  assert.notEqual(c.digest, d.digest, 'without the epoch the differing mtime shows');
  const dst = fresh();
  await applyLayer(createReadStream(join(work, 'a.gzip')), dst, { format: 'overlay' });
  assert.equal(Math.floor(lstatSync(join(dst, 'etc/passwd')).mtimeMs / 1000), epoch);
  assert.equal(Math.floor(lstatSync(join(dst, 'usr/lib/big')).mtimeMs / 1000), 1_500_000_000 + 'usr/lib/big'.length);
});

test('include filter leaves out entries and whole subtrees', async () => {
  const src = sampleTree();
  await packDirectory(src, join(work, 'inc.tar'), { compression: 'none', include: (p) => p !== 'dev' && p !== 'etc/passwd' });
  const dst = fresh();
  await applyLayer(createReadStream(join(work, 'inc.tar')), dst, { format: 'overlay' });
  assert.deepEqual(readdirSync(dst).sort(), ['etc', 'lib', 'tmp', 'usr']);
  assert.deepEqual(readdirSync(join(dst, 'etc')), []);
});

test('whiteouts and opaque dirs: overlay format marks them, apply format deletes', async () => {
  const layer = await makeTar([
    { name: 'a/', type: 'directory' },
    { name: 'a/.wh..wh..opq', body: '' },
    { name: 'a/new', body: 'new' },
    { name: '.wh.gone', body: '' },
    { name: 'keep/.wh.x', body: '' },
  ]);
  const ov = fresh();
  await applyLayer(streamOf(layer), ov, { format: 'overlay' });
  const f = fsx();
  assert.equal(f.lgetxattr(join(ov, 'a'), 'trusted.overlay.opaque')?.toString(), 'y');
  for (const wh of ['gone', 'keep/x']) {
    const st = lstatSync(join(ov, wh));
    assert.ok(st.isCharacterDevice() && st.rdev === 0, `${wh} is a 0:0 whiteout`);
  }
  assert.equal(readFileSync(join(ov, 'a/new'), 'utf8'), 'new');

  const lower = fresh();
  mkdirSync(join(lower, 'a'));
  writeFileSync(join(lower, 'a/old'), 'old');
  mkdirSync(join(lower, 'gone/deep'), { recursive: true });
  mkdirSync(join(lower, 'keep'));
  writeFileSync(join(lower, 'keep/x'), 'x');
  writeFileSync(join(lower, 'keep/y'), 'y');
  await applyLayer(streamOf(layer), lower, { format: 'apply' });
  assert.deepEqual(readdirSync(join(lower, 'a')), ['new']);
  assert.equal(existsSync(join(lower, 'gone')), false);
  assert.deepEqual(readdirSync(join(lower, 'keep')), ['y']);
});

test('an opaque marker after its siblings keeps them (apply format)', async () => {
  const lower = fresh();
  mkdirSync(join(lower, 'a'));
  writeFileSync(join(lower, 'a/old'), 'old');
  await applyLayer(streamOf(await makeTar([{ name: 'a/mine', body: '1' }, { name: 'a/.wh..wh..opq', body: '' }])), lower, { format: 'apply' });
  assert.deepEqual(readdirSync(join(lower, 'a')), ['mine']);
});

test('a diffID mismatch fails the apply', async () => {
  const tar = await makeTar([{ name: 'f', body: 'x' }]);
  await assert.rejects(applyLayer(streamOf(tar), fresh(), { format: 'overlay', diffId: `sha256:${'0'.repeat(64)}` }), /diffID mismatch/);
});

test('a truncated or corrupt layer fails', async () => {
  const tar = await makeTar([{ name: 'f', body: Buffer.alloc(4096, 1) }]);
  await assert.rejects(applyLayer(streamOf(tar.subarray(0, 1024)), fresh(), { format: 'overlay' }), PierError);
  const bad = Buffer.from(tar); bad[0] ^= 0xff;
  await assert.rejects(applyLayer(streamOf(bad), fresh(), { format: 'overlay' }), PierError);
});

test('relative in-tree symlinks are followed (merged /usr)', async () => {
  const dst = fresh();
  await applyLayer(streamOf(await makeTar([
    { name: 'usr/lib/', type: 'directory' },
    { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
    { name: 'usr/x', type: 'symlink', linkname: '../usr/./lib' },
    { name: 'lib/libc.so', body: 'c' },
    { name: 'usr/x/libm.so', body: 'm' },
  ])), dst, { format: 'overlay' });
  assert.deepEqual(readdirSync(join(dst, 'usr/lib')).sort(), ['libc.so', 'libm.so']);
  assert.ok(lstatSync(join(dst, 'lib')).isSymbolicLink());
});

// ---- hostile layers: refused, or kept inside the target; nothing outside it ever changes ----

/**
 * `lands`: the layer is applied, symlinks resolved as a chroot at the target would (containerd's
 * unpack does the same), and its payload is found at this path inside the target. Otherwise the
 * layer is refused with an error naming `entry`.
 */
const hostile: { name: string; entries: (outside: string) => Parameters<typeof makeTar>[0]; entry: string; lands?: (outside: string) => string }[] = [
  { name: '../ path', entry: '../../outside/pwned', entries: () => [{ name: '../../outside/pwned', body: 'x' }] },
  { name: 'absolute path', entry: '/outside/pwned', lands: (o) => `${o.slice(1)}/pwned`, entries: (o) => [{ name: `${o}/pwned`, body: 'x' }] },
  { name: 'symlink to an absolute dir, then a file through it', entry: 'etc/pwned', lands: (o) => `${o.slice(1)}/pwned`, entries: (o) => [
    { name: 'etc', type: 'symlink', linkname: o }, { name: 'etc/pwned', body: 'x' }] },
  { name: 'symlink to /etc, then a file through it', entry: 'e/passwd-pier-test', lands: () => 'etc/passwd-pier-test', entries: () => [
    { name: 'e', type: 'symlink', linkname: '/etc' }, { name: 'e/passwd-pier-test', body: 'x' }] },
  { name: 'symlink to ../../.., then a file through it', entry: 'up/pwned', lands: () => 'pwned', entries: () => [
    { name: 'up', type: 'symlink', linkname: '../../..' }, { name: 'up/pwned', body: 'x' }] },
  { name: 'symlink chain leaving the tree', entry: 'b/c/pwned', lands: () => 'c/pwned', entries: () => [
    { name: 'a', type: 'symlink', linkname: 'sub/../..' }, { name: 'sub/', type: 'directory' }, { name: 'b', type: 'symlink', linkname: 'a' }, { name: 'b/c/pwned', body: 'x' }] },
  { name: 'hard link to /etc/passwd', entry: 'pw', entries: () => [{ name: 'pw', type: 'link', linkname: '/etc/passwd' }] },
  { name: 'hard link to ../outside', entry: 'pw', entries: () => [{ name: 'pw', type: 'link', linkname: '../outside/sentinel' }] },
  { name: 'hard link through an escaping symlink', entry: 'pw', entries: (o) => [
    { name: 's', type: 'symlink', linkname: o }, { name: 'pw', type: 'link', linkname: 's/sentinel' }] },
  { name: 'whiteout through an escaping symlink', entry: 's/.wh.sentinel', lands: (o) => `${o.slice(1)}`, entries: (o) => [
    { name: 's', type: 'symlink', linkname: o }, { name: 's/.wh.sentinel', body: '' }] },
];

for (const h of hostile) {
  for (const format of ['overlay', 'apply'] as const) {
    test(`${h.lands ? 'contains' : 'refuses'} ${h.name} (${format})`, async () => {
      const base = fresh('hostile');
      const outside = join(base, 'outside');
      const target = join(base, 'a', 'target');
      mkdirSync(outside);
      mkdirSync(target, { recursive: true });
      writeFileSync(join(outside, 'sentinel'), 'untouched');
      const before = listTree(outside);
      const etcBefore = readdirSync('/etc').sort();
      const tar = await makeTar(h.entries(outside));
      if (h.lands) {
        await applyLayer(streamOf(tar), target, { format });
        assert.ok(existsSync(join(target, h.lands(outside))), `${h.lands(outside)} inside the target`);
      } else {
        await assert.rejects(applyLayer(streamOf(tar), target, { format }), (err: unknown) => {
          assert.ok(err instanceof PierError, String(err));
          assert.match(err.message, new RegExp(`layer entry "${h.entry.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace('/outside', '.*outside')}"`));
          return true;
        });
      }
      assert.deepEqual(listTree(outside), before);
      assert.deepEqual(readdirSync(join(base, 'a')), ['target']);
      assert.deepEqual(readdirSync(base).sort(), ['a', 'outside']);
      assert.deepEqual(readdirSync('/etc').sort(), etcBefore);
      assert.equal(lstatSync('/etc/passwd').nlink, 1);
    });
  }
}

test('overlay xattrs in a layer are not applied (they would forge whiteouts and redirects)', async () => {
  const dst = fresh();
  const tar = await makeTar([{ name: 'd/', type: 'directory', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.user.ok': 'v' } }]);
  await applyLayer(streamOf(tar), dst, { format: 'overlay' });
  assert.deepEqual(fsx().llistxattr(join(dst, 'd')), ['user.ok']);
});
