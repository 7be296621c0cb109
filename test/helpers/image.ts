/** Fixtures for image tests: temp PIER_ROOTs, tiny tars, and hand-made OCI / docker layouts. */
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { tarFromEntries } from '../../src/image/layer/index.ts';
import { MEDIA_TYPES, type Descriptor, type ImageService } from '../../src/image/index.ts';

export function tempDir(prefix = 'pier-image-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function sha(data: string | Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export interface TarFile {
  name: string;
  data?: string | Buffer;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
  mode?: number;
}

/** A tar built in memory (fixed mtimes, root-owned). */
export async function makeTar(files: TarFile[]): Promise<Buffer> {
  return tarFromEntries(files.map((f) => {
    const type = f.type ?? 'file';
    return {
      header: { name: f.name, type, mode: f.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: 0, gid: 0, size: 0, mtime: 0, linkname: f.linkname },
      data: type === 'file' ? Buffer.from(f.data ?? '') : undefined,
    };
  }));
}

export interface FixtureImage {
  layerTar: Buffer;
  layerBlob: Buffer;
  config: Buffer;
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
}

/** A one-layer image; `docker` uses Docker schema2 media types throughout. */
export async function fixtureImage(opts: { docker?: boolean; text?: string; files?: TarFile[] } = {}): Promise<FixtureImage> {
  const layerTar = await makeTar(opts.files ?? [{ name: 'hello.txt', data: opts.text ?? 'hello\n' }]);
  const layerBlob = gzipSync(layerTar);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/hello'] },
    rootfs: { type: 'layers', diff_ids: [sha(layerTar)] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'fixture' }],
  }));
  const mediaType = opts.docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
  // Docker-style pretty JSON: its digest must survive import byte for byte.
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType,
    config: { mediaType: opts.docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', size: config.length, digest: sha(config) },
    layers: [{ mediaType: opts.docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip', size: layerBlob.length, digest: sha(layerBlob) }],
  }, null, 3));
  return { layerTar, layerBlob, config, manifest, manifestDigest: sha(manifest), mediaType };
}

/** Write an OCI layout directory holding the images, named by ref.name annotations. */
export function writeLayout(dir: string, images: { img: FixtureImage; refName?: string }[]): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const put = (b: Buffer) => writeFileSync(join(dir, 'blobs', 'sha256', sha(b).slice(7)), b);
  const manifests = [];
  for (const { img, refName } of images) {
    put(img.layerBlob); put(img.config); put(img.manifest);
    manifests.push({ mediaType: img.mediaType, digest: img.manifestDigest, size: img.manifest.length, ...(refName ? { annotations: { 'org.opencontainers.image.ref.name': refName } } : {}) });
  }
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
}

export function cleanup(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/**
 * A second platform for multi-platform tests: `base`'s layers plus one of its own (`/arm-only`)
 * and a copy of its config that says linux/arm64/v8, written into the store (not tagged).
 */
export async function arm64Image(svc: ImageService, base = 'busybox:latest'): Promise<{ arm: Descriptor; cfg: Descriptor; layer: Descriptor }> {
  const amd = svc.refs.get(base)!;
  const amdManifest = JSON.parse((await svc.content.readBytes(amd.digest)).toString());
  const tar = await makeTar([{ name: 'arm-only', data: 'arm64\n' }]);
  const config = JSON.parse((await svc.content.readBytes(amdManifest.config.digest)).toString());
  config.architecture = 'arm64';
  config.variant = 'v8';
  config.rootfs.diff_ids.push(sha(tar));
  const put = async (bytes: Buffer, mediaType: string): Promise<Descriptor> => {
    const d = { mediaType, digest: sha(bytes), size: bytes.length };
    await svc.content.write(bytes, { digest: d.digest, size: d.size });
    return d;
  };
  // gzip, as busybox's: tools that compress plain tar layers on copy (skopeo to oci:) leave it as it is
  const layer = await put(gzipSync(tar), MEDIA_TYPES.ociLayerGzip);
  const cfg = await put(Buffer.from(JSON.stringify(config)), MEDIA_TYPES.ociConfig);
  const arm = await put(Buffer.from(JSON.stringify({ ...amdManifest, config: cfg, layers: [...amdManifest.layers, layer] })), MEDIA_TYPES.ociManifest);
  return { arm, cfg, layer };
}
