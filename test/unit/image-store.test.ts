import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, utimesSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import { ContentStore } from '../../src/image/store/content.ts';
import { RefIndex } from '../../src/image/store/refs.ts';
import { withLock } from '../../src/image/store/lock.ts';
import { ImageService } from '../../src/image/index.ts';
import { digestOf, parseDigest } from '../../src/common/digest.ts';
import { cleanup, fixtureImage, sha, tempDir, writeLayout } from '../helpers/image.ts';

function store(): { dir: string; cs: ContentStore } {
  const dir = tempDir();
  const cs = new ContentStore(join(dir, 'images'));
  cs.init();
  return { dir, cs };
}

test('a write stores verified content under blobs/sha256 and leaves nothing in ingest', async () => {
  const { dir, cs } = store();
  try {
    const data = Buffer.from('some content');
    const r = await cs.write(Readable.from([data.subarray(0, 4), data.subarray(4)]), { digest: sha(data), size: data.length });
    assert.equal(r.digest, sha(data));
    assert.equal(r.existed, false);
    assert.deepEqual(readFileSync(cs.blobPath(r.digest)), data);
    assert.deepEqual(readdirSync(cs.ingestDir), []);
    assert.equal(readFileSync(join(cs.root, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
    // No expected digest: the store computes it.
    const r2 = await cs.write('other');
    assert.equal(r2.digest, digestOf('other'));
  } finally { cleanup(dir); }
});

test('a stream of small, batch-filling and large chunks is written in order, byte for byte', async () => {
  const { dir, cs } = store();
  try {
    // sizes chosen to fill a 1 MiB batch exactly, overflow it, and bypass it, the chunk buffers reused
    const sizes = [16384, 1048576 - 16384, 1, 65536, 3 << 20, 7, 1048576, 16384, 999_999, 2];
    const data = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    async function* chunks() {
      let off = 0;
      const reuse = Buffer.alloc(4 << 20);
      for (const n of sizes) {
        // a producer that reuses its buffer, as stream sources may once a chunk is consumed
        data.copy(reuse, 0, off, off + n);
        yield reuse.subarray(0, n);
        off += n;
      }
    }
    const r = await cs.write(chunks(), { digest: sha(data), size: data.length });
    assert.equal(r.digest, sha(data));
    assert.ok(readFileSync(cs.blobPath(r.digest)).equals(data));
    assert.deepEqual(readdirSync(cs.ingestDir), []);
  } finally { cleanup(dir); }
});

test('an ingest written by someone else: commit checks the digest and size it is told, abort leaves nothing', async () => {
  const { dir, cs } = store();
  try {
    const data = Buffer.from('written elsewhere');
    const ok = await cs.ingest({ digest: sha(data), size: data.length });
    writeFileSync(ok.fd, data);
    assert.deepEqual(await ok.commit(sha(data), data.length), { digest: sha(data), size: data.length, existed: false });
    assert.deepEqual(readFileSync(cs.blobPath(sha(data))), data);
    await assert.rejects(ok.commit(sha(data), data.length), /already committed/);
    // a second copy of a present blob is dropped
    const again = await cs.ingest({ digest: sha(data), size: data.length });
    writeFileSync(again.fd, data);
    assert.equal((await again.commit(sha(data), data.length)).existed, true);
    // the writer computed another digest, or another size: refused, nothing stored
    const other = Buffer.from('something else');
    const bad = await cs.ingest({ digest: sha(other), size: other.length });
    writeFileSync(bad.fd, data);
    await assert.rejects(bad.commit(sha(data), data.length), /does not match its content/);
    const short = await cs.ingest({ digest: sha(other), size: other.length });
    await assert.rejects(short.commit(sha(other), 3), /has 3 bytes, not the declared/);
    assert.equal(cs.has(sha(other)), false);
    const dropped = await cs.ingest({ digest: sha(other), size: other.length });
    await dropped.abort();
    await dropped.abort();
    assert.deepEqual(readdirSync(cs.ingestDir), [], 'no temp files left');
  } finally { cleanup(dir); }
});

test('content that does not match its digest or size is refused and never stored', async () => {
  const { dir, cs } = store();
  try {
    const claimed = sha('the real thing');
    await assert.rejects(cs.write('a forgery', { digest: claimed }), (err: Error) => {
      assert.equal(err.message, `blob ${claimed} does not match its content (got ${sha('a forgery')})`);
      return true;
    });
    assert.equal(cs.has(claimed), false);
    assert.equal(cs.has(sha('a forgery')), false);
    await assert.rejects(cs.write('12345', { digest: sha('12345'), size: 4 }), /larger than its declared size 4/);
    await assert.rejects(cs.write('12345', { digest: sha('12345'), size: 9 }), /has 5 bytes, not the declared 9/);
    assert.equal(cs.has(sha('12345')), false);
    assert.deepEqual(readdirSync(cs.ingestDir), [], 'temp files are removed on failure');
    await assert.rejects(cs.write('x', { digest: 'sha256:abc' }), /64 lowercase hex digits/);
    await assert.rejects(cs.write('x', { digest: 'md5:' + 'a'.repeat(32) }), /unsupported algorithm "md5"/);
  } finally { cleanup(dir); }
});

test('a blob already present is not rewritten; a stored blob that rots is detected on read', async () => {
  const { dir, cs } = store();
  try {
    const r = await cs.write('keep me');
    const ino = statSync(cs.blobPath(r.digest)).ino;
    const again = await cs.write('keep me', { digest: r.digest });
    assert.equal(again.existed, true);
    assert.equal(statSync(cs.blobPath(r.digest)).ino, ino);
    // A corrupt copy of present content is still refused.
    await assert.rejects(cs.write('keep mE', { digest: r.digest }), /does not match its content/);
    writeFileSync(cs.blobPath(r.digest), 'rotten');
    await assert.rejects(cs.readBytes(r.digest), /is corrupt/);
    assert.equal(await cs.verify(r.digest), false);
  } finally { cleanup(dir); }
});

test('sha512 digests are verified with sha512 and stored under blobs/sha512', async () => {
  const { dir, cs } = store();
  try {
    const d = digestOf('x', 'sha512');
    assert.equal(parseDigest(d).hex.length, 128);
    await cs.write('x', { digest: d });
    assert.ok(existsSync(join(cs.root, 'blobs', 'sha512', d.slice(7))));
  } finally { cleanup(dir); }
});

test('many parallel writers of the same and different blobs, and parallel tags, leave a consistent store', async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    svc.content.init();
    const same = Buffer.alloc(256 * 1024, 7);
    const writes = [];
    for (let i = 0; i < 40; i++) {
      writes.push(svc.content.write(Readable.from([same.subarray(0, 1000), same.subarray(1000)]), { digest: sha(same) }));
      writes.push(svc.content.write(`different ${i}`));
    }
    const results = await Promise.all(writes);
    assert.equal(results.filter((r) => r.digest === sha(same)).length, 40);
    assert.equal(svc.content.list().length, 41);
    for (const b of svc.content.list()) assert.ok(await svc.content.verify(b.digest), b.digest);
    assert.deepEqual(readdirSync(svc.content.ingestDir), []);

    const img = await fixtureImage();
    const layout = join(dir, 'layout');
    writeLayout(layout, [{ img, refName: 'v1' }]);
    await svc.importPath(layout, { ref: 'base:v1' });
    await Promise.all(Array.from({ length: 30 }, (_, i) => svc.tag('base:v1', `t${i % 10}/img:${i}`)));
    // And from other processes, through the lock file.
    const script = `import { ImageService } from ${JSON.stringify(join(import.meta.dirname, '../../src/image/index.ts'))};
      const s = new ImageService({ root: process.argv[1] });
      await Promise.all(Array.from({ length: 10 }, (_, i) => s.tag('base:v1', 'proc' + process.argv[2] + ':' + i)));`;
    await Promise.all([0, 1, 2, 3].map((n) => new Promise<void>((resolve, reject) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', script, dir, String(n)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.on('data', (b) => { err += b; });
      c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`child ${n} exited ${code}: ${err}`))));
    })));
    const refs = svc.refs.list().map((e) => e.ref);
    assert.equal(refs.length, 1 + 30 + 40);
    assert.ok(refs.includes('proc3:9') && refs.includes('t9/img:29'));
    assert.equal(existsSync(svc.refs.lockPath), false);
  } finally { cleanup(dir); }
});

test('a lock left by a dead process is taken over; a live one is waited for', async () => {
  const dir = tempDir();
  try {
    const lock = join(dir, 'x.lock');
    writeFileSync(lock, '999999999\n');
    assert.equal(await withLock(lock, () => 'ran'), 'ran');
    assert.equal(existsSync(lock), false);
    writeFileSync(lock, `${process.ppid}\n`);
    await assert.rejects(withLock(lock, () => 'no', { timeoutMs: 150 }), /timed out waiting for lock/);
  } finally { cleanup(dir); }
});

test('gc sweeps unreferenced blobs and old ingest files, keeps what index.json reaches', async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    const img = await fixtureImage();
    const layout = join(dir, 'layout');
    writeLayout(layout, [{ img, refName: 'v1' }]);
    await svc.importPath(layout, { ref: 'keep:v1' });
    const junk = await svc.content.write('unreferenced junk');
    mkdirSync(svc.content.ingestDir, { recursive: true });
    const oldTmp = join(svc.content.ingestDir, 'old'); writeFileSync(oldTmp, 'x'.repeat(10));
    const newTmp = join(svc.content.ingestDir, 'new'); writeFileSync(newTmp, 'y');
    const hourAgo = new Date(Date.now() - 2 * 3600 * 1000);
    utimesSync(oldTmp, hourAgo, hourAgo);

    const dry = await svc.gc({ dryRun: true });
    assert.deepEqual(dry.removed.map((b) => b.digest), [junk.digest]);
    assert.ok(svc.content.has(junk.digest), 'dry run removes nothing');
    const real = await svc.gc();
    assert.deepEqual(real.removed.map((b) => b.digest), [junk.digest]);
    assert.deepEqual(real.ingest, ['old']);
    assert.equal(real.freedBytes, 'unreferenced junk'.length + 10);
    assert.equal(existsSync(newTmp), true);
    for (const d of [img.manifestDigest, sha(img.config), sha(img.layerBlob)]) assert.ok(svc.content.has(d), d);
    await svc.resolve('keep:v1');

    // Untag: everything goes.
    const r = await svc.remove('keep:v1');
    assert.deepEqual(r.untagged, ['keep:v1']);
    assert.equal(r.gc.removed.length, 3);
    assert.equal(svc.content.list().length, 0);
  } finally { cleanup(dir); }
});

test('a live lease protects blobs of an import in flight from gc', async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    svc.content.init();
    const lease = svc.content.newLease();
    const b = await svc.content.write('in flight', {}, lease);
    assert.equal((await svc.gc()).removed.length, 0);
    lease.release();
    assert.deepEqual((await svc.gc()).removed.map((x) => x.digest), [b.digest]);
  } finally { cleanup(dir); }
});

test('the ref index is itself a valid OCI layout index with full refs as ref.name', async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    const img = await fixtureImage();
    const layout = join(dir, 'layout');
    writeLayout(layout, [{ img, refName: 'v1' }]);
    await svc.importPath(layout, { ref: 'localhost:5000/team/app' });
    const idx = JSON.parse(readFileSync(join(dir, 'images', 'index.json'), 'utf8'));
    assert.equal(idx.schemaVersion, 2);
    assert.equal(idx.manifests[0].annotations['org.opencontainers.image.ref.name'], 'localhost:5000/team/app:latest');
    assert.equal(new RefIndex(join(dir, 'images')).get('localhost:5000/team/app:latest')?.digest, img.manifestDigest);
  } finally { cleanup(dir); }
});
