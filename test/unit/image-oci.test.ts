import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReference, normalizeReference, formatReference } from '../../src/image/oci/reference.ts';
import { parseManifest, parseIndex, parseConfig, manifestKind } from '../../src/image/oci/validate.ts';
import { parseDigest } from '../../src/common/digest.ts';
import { formatPlatform, parsePlatform, pickPlatform, platformsOf } from '../../src/image/oci/platform.ts';

const D = 'sha256:' + 'a'.repeat(64);
const manifest = (over: Record<string, unknown> = {}) => JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D, size: 2 },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D, size: 10 }], ...over,
});

test('references normalise like docker for local names and keep a host prefix', () => {
  assert.equal(normalizeReference('busybox'), 'busybox:latest');
  assert.equal(normalizeReference('busybox:1.36'), 'busybox:1.36');
  assert.equal(normalizeReference('localhost:5000/team/app'), 'localhost:5000/team/app:latest');
  assert.equal(normalizeReference('registry.example.com/a/b:v_1.0-rc'), 'registry.example.com/a/b:v_1.0-rc');
  assert.deepEqual(parseReference(`busybox@${D}`), { name: 'busybox', tag: undefined, digest: D });
  assert.deepEqual(parseReference(`busybox:1@${D}`), { name: 'busybox', tag: '1', digest: D });
  assert.equal(formatReference(parseReference('a__b-c/e---f.g')), 'a__b-c/e---f.g:latest');
  assert.equal(parseReference('x', { defaultTag: false }).tag, undefined);
});

test('bad references are refused with the reason', () => {
  assert.throws(() => parseReference(''), /empty/);
  assert.throws(() => parseReference('Busybox'), /must be lowercase/);
  assert.throws(() => parseReference('a/-b'), /name component "-b"/);
  assert.throws(() => parseReference('a:-tag'), /tag "-tag" must match/);
  assert.throws(() => parseReference('a:' + 't'.repeat(129)), /tag/);
  assert.throws(() => parseReference('a@sha256:123'), /64 lowercase hex/);
  assert.throws(() => parseReference('a..b'), /name component/);
  assert.throws(() => parseReference('x'.repeat(256)), /longer than 255/);
});

test('digests: sha256 and sha512 lengths are enforced', () => {
  assert.deepEqual(parseDigest(D), { algorithm: 'sha256', hex: 'a'.repeat(64) });
  assert.throws(() => parseDigest('sha512:' + 'a'.repeat(64)), /128 lowercase hex/);
  assert.throws(() => parseDigest('sha256:' + 'A'.repeat(64)), /lowercase hex/);
  assert.throws(() => parseDigest('nodigest'), /not a digest/);
});

test('manifest validation names the broken field', () => {
  assert.equal(parseManifest(manifest()).layers.length, 1);
  assert.throws(() => parseManifest(manifest({ schemaVersion: 3 })), /invalid manifest.schemaVersion: must be 2, not 3/);
  assert.throws(() => parseManifest(manifest({ mediaType: 'text/plain' })), /invalid manifest.mediaType: must be one of/);
  assert.throws(() => parseManifest(manifest({ layers: [{ mediaType: 'a/b', digest: D, size: -1 }] })), /invalid manifest.layers\[0\].size: must be a non-negative integer, not -1/);
  assert.throws(() => parseManifest(manifest({ layers: [{ mediaType: 'a/b', digest: D, size: 1.5 }] })), /layers\[0\].size/);
  assert.throws(() => parseManifest(manifest({ layers: [{ mediaType: 'a/b', digest: 'sha256:xyz', size: 1 }] })), /invalid manifest.layers\[0\].digest/);
  assert.throws(() => parseManifest(manifest({ config: { mediaType: 'nope', digest: D, size: 1 } })), /invalid manifest.config.mediaType/);
  assert.throws(() => parseManifest(manifest({ layers: 'x' })), /invalid manifest.layers: must be an array/);
  assert.throws(() => parseManifest('{not json'), /invalid manifest: not JSON/);
  assert.throws(() => parseManifest(manifest(), 'application/vnd.docker.distribution.manifest.v2+json'), /does not match its descriptor/);
});

test('Docker schema2 manifests and manifest lists are accepted; schema1 is refused clearly', () => {
  const docker = manifest({ mediaType: 'application/vnd.docker.distribution.manifest.v2+json' });
  assert.equal(parseManifest(docker).mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.equal(manifestKind(docker), 'manifest');
  const list = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifests: [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: D, size: 5, platform: { architecture: 'amd64', os: 'linux' } }] });
  assert.equal(manifestKind(list), 'index');
  assert.equal(parseIndex(list).manifests[0].platform?.os, 'linux');
  assert.throws(() => parseIndex(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'a/b', digest: D, size: 1, platform: { os: 'linux' } }] })),
    /invalid index.manifests\[0\].platform.architecture/);
  const schema1 = JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'latest', fsLayers: [] });
  assert.throws(() => manifestKind(schema1), /Docker schema1 manifest: it is deprecated and not supported/);
  assert.throws(() => parseManifest(schema1), /schema1/);
});

test('config validation: rootfs type and diff_ids matching the layers', () => {
  const cfg = (over: Record<string, unknown> = {}) => JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D] }, ...over });
  const m = parseManifest(manifest());
  assert.equal(parseConfig(cfg(), m).rootfs.diff_ids.length, 1);
  assert.throws(() => parseConfig(cfg({ rootfs: { type: 'tar', diff_ids: [] } })), /invalid config.rootfs.type: must be "layers"/);
  assert.throws(() => parseConfig(cfg({ rootfs: { type: 'layers', diff_ids: [D, D] } }), m), /config.rootfs.diff_ids: has 2 entries but the manifest has 1 layers/);
  assert.throws(() => parseConfig(cfg({ os: '' })), /invalid config.os/);
  assert.throws(() => parseConfig(cfg({ config: { Env: 'PATH=/bin' } })), /invalid config.config.Env: must be an array of strings/);
  assert.throws(() => parseConfig(cfg({ history: [{ empty_layer: 'yes' }] })), /config.history\[0\].empty_layer/);
});

test('platforms: parsed from os/arch[/variant], matched with variants counting only when both name one', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  for (const bad of ['arm64', 'linux/', 'linux/arm/v7/x', 'Linux/AMD64', '']) assert.throws(() => parsePlatform(bad), /invalid platform/, bad);
  const d = (platform?: { os: string; architecture: string; variant?: string }) => ({ mediaType: 'm', digest: `sha256:${'a'.repeat(64)}`, size: 1, ...(platform ? { platform } : {}) });
  const list = [d({ os: 'linux', architecture: 'amd64' }), d({ os: 'linux', architecture: 'arm', variant: 'v6' }), d({ os: 'linux', architecture: 'arm', variant: 'v7' })];
  assert.equal(pickPlatform(list, parsePlatform('linux/arm/v7')), list[2]);
  assert.equal(pickPlatform(list, parsePlatform('linux/arm')), list[1], 'no variant wanted: the first arm');
  assert.equal(pickPlatform(list, parsePlatform('linux/s390x')), undefined);
  const lone = [d()];
  assert.equal(pickPlatform(lone, parsePlatform('linux/s390x')), lone[0], 'a lone entry without a platform stands for any');
  assert.equal(pickPlatform([d(), d()], parsePlatform('linux/s390x')), undefined);
  assert.equal(platformsOf(list), 'linux/amd64, linux/arm/v6, linux/arm/v7');
  assert.equal(formatPlatform(undefined), '?');
});
