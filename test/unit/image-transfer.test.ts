import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageService } from '../../src/image/index.ts';
import { cleanup, fixtureImage, makeTar, sha, tempDir, writeLayout } from '../helpers/image.ts';

test('a Docker schema2 layout imports with its digests unchanged and resolves', async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    const img = await fixtureImage({ docker: true });
    writeLayout(join(dir, 'src'), [{ img, refName: 'v2' }]);
    const got = await svc.importPath(join(dir, 'src'));
    assert.deepEqual(got.map((g) => g.ref), ['src:v2'], 'a bare ref.name is a tag on the directory name');
    assert.equal(got[0].descriptor.digest, img.manifestDigest);
    assert.deepEqual(readFileSync(svc.content.blobPath(img.manifestDigest)), img.manifest, 'stored byte for byte');
    const r = await svc.resolve('src:v2');
    assert.equal(r.manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(r.configDigest, sha(img.config));
    assert.deepEqual(r.config.config?.Cmd, ['/hello']);
    assert.equal((await svc.resolve(`src@${img.manifestDigest}`)).manifestDigest, img.manifestDigest);
    assert.equal((await svc.resolve(img.manifestDigest.slice(7, 19))).ref, img.manifestDigest, 'an ID prefix resolves');
    await assert.rejects(svc.resolve('nope'), { message: 'image "nope:latest" not found' });
  } finally { cleanup(dir); }
});

test('a layout with a corrupt or truncated blob is refused and nothing is tagged or kept', async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    const img = await fixtureImage();
    const src = join(dir, 'src');
    writeLayout(src, [{ img, refName: 'v1' }]);
    const layerPath = join(src, 'blobs', 'sha256', sha(img.layerBlob).slice(7));
    const bad = Buffer.from(img.layerBlob); bad[bad.length - 1] ^= 0xff;
    writeFileSync(layerPath, bad);
    await assert.rejects(svc.importPath(src, { ref: 'x' }), new RegExp(`blob ${sha(img.layerBlob)} does not match its content \\(got ${sha(bad)}\\)`));
    assert.equal(svc.content.has(sha(img.layerBlob)), false);
    assert.equal(svc.content.has(sha(bad)), false);
    assert.deepEqual(svc.refs.list(), []);
    writeFileSync(layerPath, img.layerBlob.subarray(0, 10));
    await assert.rejects(svc.importPath(src, { ref: 'x' }), /does not match its content|bytes, not the declared/);
    // Manifest that lies about the config's layer count.
    const cfg = JSON.parse(img.config.toString()); cfg.rootfs.diff_ids.push(cfg.rootfs.diff_ids[0]);
    const badCfg = Buffer.from(JSON.stringify(cfg));
    const m = JSON.parse(img.manifest.toString()); m.config = { ...m.config, digest: sha(badCfg), size: badCfg.length };
    writeFileSync(layerPath, img.layerBlob);
    writeFileSync(join(src, 'blobs', 'sha256', sha(badCfg).slice(7)), badCfg);
    const mb = Buffer.from(JSON.stringify(m));
    writeFileSync(join(src, 'blobs', 'sha256', sha(mb).slice(7)), mb);
    writeFileSync(join(src, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: img.mediaType, digest: sha(mb), size: mb.length }] }));
    await assert.rejects(svc.importPath(src, { ref: 'x' }), /rootfs.diff_ids: has 2 entries but the manifest has 1 layers/);
    assert.deepEqual(svc.refs.list(), []);
    await svc.gc();
    assert.deepEqual(svc.content.list(), []);
  } finally { cleanup(dir); }
});

test('docker save tars: uncompressed layer.tar, symlinked duplicate layers, RepoTags', async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    const l1 = await makeTar([{ name: 'a.txt', data: 'a' }]);
    const l2 = await makeTar([{ name: 'b.txt', data: 'b' }]);
    const l2gz = gzipSync(l2);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [sha(l1), sha(l2), sha(l1)] } }));
    const cfgName = `${sha(config).slice(7)}.json`;
    const tar = await makeTar([
      { name: 'l1/', type: 'directory' }, { name: 'l1/layer.tar', data: l1 },
      { name: 'l2/', type: 'directory' }, { name: 'l2/layer.tar', data: l2gz },
      { name: 'l3/', type: 'directory' }, { name: 'l3/layer.tar', type: 'symlink', linkname: '../l1/layer.tar' },
      { name: cfgName, data: config },
      { name: 'manifest.json', data: JSON.stringify([{ Config: cfgName, RepoTags: ['app:1', 'example.com/app:2'], Layers: ['l1/layer.tar', 'l2/layer.tar', 'l3/layer.tar'] }]) },
    ]);
    writeFileSync(join(dir, 'save.tar'), tar);
    const got = await svc.importPath(join(dir, 'save.tar'));
    assert.deepEqual(got.map((g) => g.ref), ['app:1', 'example.com/app:2']);
    const r = await svc.resolve('app:1');
    assert.equal(r.configDigest, sha(config), 'config kept byte for byte: its digest is the docker image ID');
    assert.deepEqual(r.manifest.layers.map((l) => [l.mediaType, l.digest]), [
      ['application/vnd.oci.image.layer.v1.tar', sha(l1)],
      ['application/vnd.oci.image.layer.v1.tar+gzip', sha(l2gz)],
      ['application/vnd.oci.image.layer.v1.tar', sha(l1)],
    ]);
    // A layer that does not match the config's diff_ids is refused.
    const lie = await makeTar([
      { name: 'l1/layer.tar', data: l2 }, { name: cfgName, data: config },
      { name: 'manifest.json', data: JSON.stringify([{ Config: cfgName, RepoTags: ['lie:1'], Layers: ['l1/layer.tar', 'l1/layer.tar', 'l1/layer.tar'] }]) },
    ]);
    writeFileSync(join(dir, 'lie.tar'), lie);
    await assert.rejects(svc.importPath(join(dir, 'lie.tar')), /layer l1\/layer.tar does not match diff_id/);
    assert.equal(svc.refs.get('lie:1'), undefined);
    // A symlink out of the archive is refused.
    const escape = await makeTar([{ name: 'manifest.json', data: '[]' }, { name: 'x', type: 'symlink', linkname: '../../etc/passwd' }]);
    writeFileSync(join(dir, 'esc.tar'), escape);
    await assert.rejects(svc.importPath(join(dir, 'esc.tar')), /links outside the archive/);
  } finally { cleanup(dir); }
});

test('a rootfs tar becomes a one-layer image; a non-tar is refused', async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    const t = await makeTar([{ name: 'bin/', type: 'directory' }, { name: 'bin/tool', data: '#!/bin/sh\n', mode: 0o755 }]);
    writeFileSync(join(dir, 'rootfs.tar.gz'), gzipSync(t));
    const [got] = await svc.importPath(join(dir, 'rootfs.tar.gz'), { ref: 'tool:1' });
    assert.equal(got.ref, 'tool:1');
    const r = await svc.resolve('tool:1');
    assert.equal(r.manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.deepEqual(r.config.rootfs.diff_ids, [sha(t)]);
    assert.equal(r.config.architecture.length > 0, true);
    writeFileSync(join(dir, 'plain.tar'), t);
    const [p] = await svc.importPath(join(dir, 'plain.tar'));
    assert.equal(p.ref, 'plain:latest');
    assert.equal((await svc.resolve('plain')).manifest.layers[0].digest, sha(t), 'an uncompressed tar is stored as given');
    writeFileSync(join(dir, 'junk.bin'), Buffer.alloc(2000, 1));
    await assert.rejects(svc.importPath(join(dir, 'junk.bin'), { ref: 'j', format: 'rootfs' }), /is not a tar archive/);
    assert.equal(readdirSync(svc.content.ingestDir).length, 0);
  } finally { cleanup(dir); }
});

test('export writes an OCI layout (dir and archive) that imports back to the same digests', async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    const a = await fixtureImage({ text: 'a' });
    const b = await fixtureImage({ text: 'b', docker: true });
    writeLayout(join(dir, 'src'), [{ img: a, refName: 'a' }, { img: b, refName: 'b' }]);
    await svc.importPath(join(dir, 'src'));
    await svc.tag('src:a', 'other:a');
    await assert.rejects(svc.export(['src:a', 'src:b', 'other:a'], join(dir, 'x'), { format: 'oci-dir' }), /both are "a"/);
    assert.equal(existsSync(join(dir, 'x')), false, 'nothing half-made');
    await svc.export(['src:a', 'src:b'], join(dir, 'out'), { format: 'oci-dir' });
    const idx = JSON.parse(readFileSync(join(dir, 'out', 'index.json'), 'utf8'));
    assert.deepEqual(idx.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name']), ['a', 'b']);
    assert.equal(readdirSync(join(dir, 'out', 'blobs', 'sha256')).length, 6);
    await svc.export(['src:b'], join(dir, 'out.tar'), { format: 'oci-archive' });
    const other = new ImageService({ root: join(dir, 'root2') });
    const got = await other.importPath(join(dir, 'out.tar'));
    assert.deepEqual(got.map((g) => [g.ref, g.descriptor.digest]), [['src:b', b.manifestDigest]]);
    await assert.rejects(svc.export(['nope'], join(dir, 'y'), { format: 'oci-dir' }), /image "nope:latest" not found/);
  } finally { cleanup(dir); }
});

test('an image whose layer escapes the rootfs is refused at import, naming the entry; nothing is tagged', async () => {
  // Refused on arrival (as containerd's unpack refuses it), not later when it is first run.
  for (const [files, entry] of [
    [[{ name: 'ok.txt', data: 'x' }, { name: '../../escape', data: 'pwned' }], '../../escape'],
    [[{ name: '/../etc/cron.d/pwn', data: 'x' }], '/../etc/cron.d/pwn'],
    [[{ name: 'pw', type: 'link', linkname: '../../etc/passwd' }], 'pw'],
  ] as const) {
    const dir = tempDir();
    try {
      const svc = new ImageService({ root: dir });
      const img = await fixtureImage({ files: files as never });
      writeLayout(join(dir, 'src'), [{ img, refName: 'v1' }]);
      await assert.rejects(svc.importPath(join(dir, 'src')), (err: Error) => {
        assert.match(err.message, new RegExp(`^layer ${sha(img.layerBlob)}: layer entry "${entry.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" escapes the rootfs$`));
        return true;
      });
      assert.deepEqual(svc.refs.list(), []);
    } finally { cleanup(dir); }
  }
});

test('a layer that does not match its diff_id is refused at import', async () => {
  const dir = tempDir();
  try {
    const svc = new ImageService({ root: dir });
    const img = await fixtureImage();
    const cfg = JSON.parse(img.config.toString());
    cfg.rootfs.diff_ids = [sha('something else')];
    const config = Buffer.from(JSON.stringify(cfg));
    const m = JSON.parse(img.manifest.toString());
    m.config = { ...m.config, digest: sha(config), size: config.length };
    const manifest = Buffer.from(JSON.stringify(m));
    writeLayout(join(dir, 'src'), [{ img: { ...img, config, manifest, manifestDigest: sha(manifest) }, refName: 'v1' }]);
    await assert.rejects(svc.importPath(join(dir, 'src')), /does not match diff_id/);
    assert.deepEqual(svc.refs.list(), []);
  } finally { cleanup(dir); }
});
