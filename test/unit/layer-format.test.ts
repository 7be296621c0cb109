import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { encodeHeader, END_OF_ARCHIVE, padding, tarFromEntries } from '../../src/image/layer/tar-write.ts';
import { createExtract, toEntry, type TarEntry } from '../../src/image/layer/tar-read.ts';
import { decompressed, sniff } from '../../src/image/layer/decompress.ts';
import { normalizeEntry } from '../../src/image/layer/safepath.ts';
import { checkLayer } from '../../src/image/layer/check.ts';
import { chainIds } from '../../src/image/snapshot/index.ts';
import { PierError } from '../../src/common/errors.ts';

async function readAll(buf: Buffer): Promise<TarEntry[]> {
  const ex = createExtract();
  const out: TarEntry[] = [];
  ex.on('entry', (h, s, next) => { const e = toEntry(h); if (e) out.push(e); s.on('end', () => next()); s.resume(); });
  const done = new Promise((res, rej) => { ex.on('finish', () => res(undefined)); ex.on('error', rej); });
  ex.end(buf);
  await done;
  return out;
}

test('headers we write read back through tar-stream, binary xattrs and long names intact', async () => {
  const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0xff, 0xfe]);
  const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
  const unicode = 'usr/share/ünïcödé-名前';
  const tar = Buffer.concat([
    encodeHeader({ name: 'bin/ping', type: 'file', mode: 0o4755, uid: 0, gid: 0, size: 3, mtime: 1234, xattrs: new Map([['security.capability', cap], ['user.a', Buffer.from('x')]]) }),
    Buffer.from('abc'), padding(3),
    encodeHeader({ name: long, type: 'symlink', mode: 0o777, uid: 3_000_000, gid: 7, size: 0, mtime: 5, linkname: 'l'.repeat(150) }),
    encodeHeader({ name: unicode, type: 'directory', mode: 0o1777, uid: 1, gid: 2, size: 0, mtime: 6 }),
    encodeHeader({ name: 'dev/sda', type: 'block', mode: 0o660, uid: 0, gid: 6, size: 0, mtime: 7, devmajor: 8, devminor: 300 }),
    END_OF_ARCHIVE,
  ]);
  const es = await readAll(tar);
  assert.equal(es.length, 4);
  assert.deepEqual([es[0].name, es[0].mode, es[0].mtimeSec, es[0].size], ['bin/ping', 0o4755, 1234, 3]);
  assert.deepEqual(es[0].xattrs.get('security.capability'), cap);
  assert.deepEqual(es[0].xattrs.get('user.a'), Buffer.from('x'));
  assert.deepEqual([es[1].name, es[1].type, es[1].linkname, es[1].uid], [long, 'symlink', 'l'.repeat(150), 3_000_000]);
  assert.deepEqual([es[2].name, es[2].type, es[2].mode], [`${unicode}/`, 'directory', 0o1777]);
  assert.deepEqual([es[3].type, es[3].devmajor, es[3].devminor], ['block', 8, 300]);
  assert.equal(tar.length % 512, 0);
});

test('PAX mtime with nanoseconds is honoured', async () => {
  const rec = (k: string, v: string) => { const body = ` ${k}=${v}\n`; let n = body.length + 2; while (String(n).length + body.length !== n) n++; return `${n}${body}`; };
  const pax = Buffer.from(rec('mtime', '1700000000.123456789'));
  const h = encodeHeader({ name: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: pax.length, mtime: 0 });
  h[156] = 0x78; // turn it into a PAX header block
  let sum = 0; h.fill(0x20, 148, 156); for (const b of h) sum += b; h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  const tar = Buffer.concat([h, pax, padding(pax.length), encodeHeader({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 9 }), END_OF_ARCHIVE]);
  const [e] = await readAll(tar);
  assert.deepEqual([e.name, e.mtimeSec, e.mtimeNsec], ['f', 1700000000, 123456789]);
});

test('compression is detected by magic number', async () => {
  const plain = Buffer.concat([encodeHeader({ name: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 }), END_OF_ARCHIVE]);
  assert.equal(sniff(gzipSync(plain)), 'gzip');
  assert.equal(sniff(zstdCompressSync(plain)), 'zstd');
  assert.equal(sniff(plain), 'none');
  for (const blob of [plain, gzipSync(plain), zstdCompressSync(plain)]) {
    const { stream } = await decompressed(Readable.from([blob.subarray(0, 1), blob.subarray(1)], { objectMode: false }));
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), plain);
  }
});

test('entry names are normalised and escapes refused', () => {
  assert.equal(normalizeEntry('./a/./b//c/'), 'a/b/c');
  assert.equal(normalizeEntry('a/../b'), 'b');
  assert.equal(normalizeEntry('./'), '');
  assert.equal(normalizeEntry('/etc/motd'), 'etc/motd', 'a leading / is the root (umoci writes such names)');
  assert.equal(normalizeEntry('/'), '');
  for (const bad of ['../x', 'a/../../x', '/../etc/passwd', '..']) {
    assert.throws(() => normalizeEntry(bad), (e: unknown) => e instanceof PierError && e.message === `layer entry "${bad}" escapes the rootfs`);
  }
});

test('chain IDs follow the image spec', () => {
  const a = `sha256:${'a'.repeat(64)}`;
  const b = `sha256:${'b'.repeat(64)}`;
  const [c1, c2] = chainIds([a, b]);
  assert.equal(c1, a);
  assert.equal(c2, `sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`);
  assert.throws(() => chainIds(['sha256:nope']), PierError);
});

test('a tar that ends right after its last data (no padding, no end blocks) reads whole; one cut inside data does not', async () => {
  const full = tarFromEntries([{ header: { name: 'etc/motd', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 }, data: Buffer.from('hi\n') }]);
  const unpadded = full.subarray(0, 512 + 3); // Debian's umoci 0.4.7 writes layers like this
  const r = await checkLayer(Readable.from([unpadded]), 'layer');
  assert.equal(r.entries, 1);
  await assert.rejects(checkLayer(Readable.from([full.subarray(0, 512 + 2)]), 'layer'), { message: "layer: cannot read it: Unexpected end of data" });
});
