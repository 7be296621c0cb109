/** Layers: apply a tar layer to a directory, pack a directory, diff an overlay upper dir. */
export { applyLayer, applyLayerAt, OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX, type ApplyFormat, type ApplyOptions, type ApplyResult } from './apply.ts';
export { packDirectory, diffUpper, archivePath, type ArchiveOptions, type PackOptions } from './pack.ts';
export { decompressed, sniff } from './decompress.ts';
export {
  MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_ZSTD, mediaTypeOf, type Compression, type LayerBlob,
} from './media.ts';
export { tarFromEntries, type WriteHeader } from './tar-write.ts';
