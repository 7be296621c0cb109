/**
 * A root filesystem as a one-layer image: a tar (plain, gzip or zstd) is stored as the layer as
 * it is; a directory is packed into a gzip layer by the layer package.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PierError } from '../../common/errors.ts';
import { newHash } from '../../common/digest.ts';
import { createReadStream } from 'node:fs';
import type { ContentStore, Lease } from '../store/content.ts';
import { MEDIA_TYPES } from '../oci/types.ts';
import { packDirectory } from '../layer/index.ts';
import type { NewLayer } from './compose.ts';
import { decompress, fileHead, looksLikeTar, sniffCompression, type Compression } from './tar.ts';

const LAYER_TYPE: Record<Compression, string> = {
  none: MEDIA_TYPES.ociLayer,
  gzip: MEDIA_TYPES.ociLayerGzip,
  zstd: MEDIA_TYPES.ociLayerZstd,
};

/** Store a rootfs tar as a layer, after checking it is a tar and computing its diff_id. */
export async function layerFromTar(path: string, store: ContentStore, lease: Lease): Promise<NewLayer> {
  const compression = sniffCompression(fileHead(path, 4));
  const h = newHash('sha256');
  let head = Buffer.alloc(0);
  try {
    for await (const c of decompress(createReadStream(path), compression)) {
      const b = c as Buffer;
      if (head.length < 512) head = Buffer.concat([head, b.subarray(0, 512 - head.length)]);
      h.update(b);
    }
  } catch (err) {
    throw new PierError(`${path}: cannot read the ${compression} stream: ${(err as Error).message}`);
  }
  if (!looksLikeTar(head)) throw new PierError(`${path} is not a tar archive (nor a gzip/zstd-compressed one)`);
  const blob = await store.writeFile(path, {}, lease);
  return { mediaType: LAYER_TYPE[compression], digest: blob.digest, size: blob.size, diffId: `sha256:${h.digest('hex')}` };
}

/** Pack a directory into a gzip layer in the store. */
export async function layerFromDirectory(dir: string, store: ContentStore, lease: Lease, opts: { sourceDateEpoch?: number } = {}): Promise<NewLayer> {
  store.init();
  const tmp = join(store.ingestDir, `pack-${randomBytes(8).toString('hex')}.tar.gz`);
  try {
    const blob = await packDirectory(dir, tmp, { compression: 'gzip', sourceDateEpoch: opts.sourceDateEpoch });
    const stored = await store.writeFile(tmp, { digest: blob.digest, size: blob.size }, lease);
    return { mediaType: blob.mediaType, digest: stored.digest, size: stored.size, diffId: blob.diffId };
  } finally {
    rmSync(tmp, { force: true });
  }
}
