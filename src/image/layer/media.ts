/** Layer media types and the blob descriptor packing returns. */
export const MEDIA_TYPE_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_TYPE_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_TYPE_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface LayerBlob {
  mediaType: string;
  /** sha256:… of the blob as written (compressed). */
  digest: string;
  size: number;
  /** sha256:… of the uncompressed tar. */
  diffId: string;
}

export function mediaTypeOf(compression: Compression): string {
  switch (compression) {
    case 'gzip': return MEDIA_TYPE_LAYER_GZIP;
    case 'zstd': return MEDIA_TYPE_LAYER_ZSTD;
    case 'none': return MEDIA_TYPE_LAYER_TAR;
  }
}
