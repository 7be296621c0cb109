/**
 * Writing a new image from layers already in the store: config + OCI manifest, both canonical
 * JSON, so the same inputs give the same digests.
 */
import { PierError } from '../../common/errors.ts';
import type { ContentStore, Lease } from '../store/content.ts';
import { MEDIA_TYPES, type ContainerConfig, type Descriptor, type HistoryEntry, type ImageConfig, type ImageManifest, type Platform } from '../oci/types.ts';

/** Go's GOARCH for this Node process, as image configs name it. */
export function goArch(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle' };
  return map[arch] ?? arch;
}

export function hostPlatform(): Platform {
  return { architecture: goArch(), os: 'linux' };
}

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface NewLayer {
  mediaType: string;
  digest: string;
  size: number;
  diffId: string;
}

export interface NewImage {
  layers: NewLayer[];
  config?: ContainerConfig;
  /** ISO time; omitted from the config when undefined (reproducible images) */
  created?: string;
  history?: HistoryEntry[];
  platform?: Platform;
  annotations?: Record<string, string>;
}

export async function writeImage(store: ContentStore, img: NewImage, lease: Lease): Promise<{ descriptor: Descriptor; manifest: ImageManifest; config: ImageConfig }> {
  const platform = img.platform ?? hostPlatform();
  for (const l of img.layers) {
    if (!store.has(l.digest)) throw new PierError(`layer ${l.digest} is not in the store`);
  }
  const config: ImageConfig = {
    ...(img.created !== undefined ? { created: img.created } : {}),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: img.config ?? { Env: [DEFAULT_PATH] },
    rootfs: { type: 'layers', diff_ids: img.layers.map((l) => l.diffId) },
    ...(img.history ? { history: img.history } : {}),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const cfg = await store.write(configBytes, {}, lease);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: cfg.digest, size: cfg.size },
    layers: img.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(img.annotations ? { annotations: img.annotations } : {}),
  };
  const mbytes = Buffer.from(JSON.stringify(manifest));
  const m = await store.write(mbytes, {}, lease);
  return { descriptor: { mediaType: MEDIA_TYPES.ociManifest, digest: m.digest, size: m.size }, manifest, config };
}
