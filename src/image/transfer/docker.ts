/**
 * `docker save` archives in the legacy layout: manifest.json lists each image's config file,
 * layer files (often uncompressed `<id>/layer.tar`) and RepoTags. The config bytes and layer
 * blobs are stored exactly as given (so the config digest is the docker image ID); each layer is
 * checked against the config's diff_ids, and an OCI manifest is written to tie them together.
 */
import { basename } from 'node:path';
import { PierError } from '../../common/errors.ts';
import { digestStream } from '../../common/digest.ts';
import type { ContentStore, Lease } from '../store/content.ts';
import { MEDIA_TYPES, type Descriptor } from '../oci/types.ts';
import { parseConfig, parseJSON } from '../oci/validate.ts';
import type { Source } from './source.ts';
import { decompress, fileHead, sniffCompression, type Compression } from './tar.ts';

interface DockerSaveEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

const LAYER_TYPE: Record<Compression, string> = {
  none: MEDIA_TYPES.ociLayer,
  gzip: MEDIA_TYPES.ociLayerGzip,
  zstd: MEDIA_TYPES.ociLayerZstd,
};

function parseDockerManifest(data: Buffer, label: string): DockerSaveEntry[] {
  const v = parseJSON(data, `${label}: manifest.json`);
  if (!Array.isArray(v) || v.length === 0) throw new PierError(`invalid ${label}: manifest.json must be a non-empty array`);
  return v.map((e, i) => {
    const at = `${label}: manifest.json[${i}]`;
    if (typeof e !== 'object' || e === null) throw new PierError(`invalid ${at}: must be an object`);
    const o = e as Record<string, unknown>;
    if (typeof o.Config !== 'string') throw new PierError(`invalid ${at}.Config: must be a string`);
    if (!Array.isArray(o.Layers) || o.Layers.some((l) => typeof l !== 'string')) throw new PierError(`invalid ${at}.Layers: must be an array of strings`);
    const tags = o.RepoTags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw new PierError(`invalid ${at}.RepoTags: must be an array of strings`);
    return { Config: o.Config, Layers: o.Layers as string[], RepoTags: tags as string[] };
  });
}

/** The uncompressed digest of a stored layer blob and its compression. */
export async function layerDiffId(store: ContentStore, digest: string): Promise<{ diffId: string; compression: Compression }> {
  const compression = sniffCompression(fileHead(store.blobPath(digest), 4));
  if (compression === 'none') return { diffId: digest, compression };
  const { digest: diffId } = await digestStream(decompress(store.readStream(digest), compression));
  return { diffId, compression };
}

export async function importDockerSave(src: Source, store: ContentStore, lease: Lease): Promise<{ descriptor: Descriptor; tags: string[] }[]> {
  const entries = parseDockerManifest(await src.readBytes('manifest.json'), src.label);
  const out: { descriptor: Descriptor; tags: string[] }[] = [];
  for (const e of entries) {
    const cfgBytes = await src.readBytes(e.Config);
    const cfgBlob = await store.write(cfgBytes, {}, lease);
    // docker names the config after its own digest: a different name means a corrupt file.
    const named = /^([a-f0-9]{64})\.json$/.exec(basename(e.Config)) ?? /^blobs\/sha256\/([a-f0-9]{64})$/.exec(e.Config);
    if (named && `sha256:${named[1]}` !== cfgBlob.digest) {
      throw new PierError(`blob sha256:${named[1]} does not match its content (got ${cfgBlob.digest})`);
    }
    const config = parseConfig(cfgBytes, undefined, `${src.label}: ${e.Config}`);
    if (config.rootfs.diff_ids.length !== e.Layers.length) {
      throw new PierError(`invalid ${src.label}: ${e.Config} has ${config.rootfs.diff_ids.length} diff_ids but manifest.json lists ${e.Layers.length} layers`);
    }
    const layers: Descriptor[] = [];
    for (let i = 0; i < e.Layers.length; i++) {
      const blob = await src.storeMember(e.Layers[i], {});
      const { diffId, compression } = await layerDiffId(store, blob.digest);
      if (diffId !== config.rootfs.diff_ids[i]) {
        throw new PierError(`layer ${e.Layers[i]} does not match diff_id ${config.rootfs.diff_ids[i]} of its config (got ${diffId})`);
      }
      layers.push({ mediaType: LAYER_TYPE[compression], digest: blob.digest, size: blob.size });
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociConfig, digest: cfgBlob.digest, size: cfgBlob.size },
      layers,
    };
    const m = await store.write(Buffer.from(JSON.stringify(manifest)), {}, lease);
    out.push({ descriptor: { mediaType: MEDIA_TYPES.ociManifest, digest: m.digest, size: m.size }, tags: e.RepoTags });
  }
  return out;
}
