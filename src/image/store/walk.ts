/**
 * Walking the content graph: an index names manifests (or indexes), a manifest names its config
 * and layers. Used to mark for GC, to check an image is complete before tagging, and to export.
 */
import { PierError } from '../../common/errors.ts';
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, type Descriptor } from '../oci/types.ts';
import { manifestKind, parseIndex, parseManifest } from '../oci/validate.ts';
import type { ContentStore } from './content.ts';

export type Role = 'index' | 'manifest' | 'config' | 'layer' | 'blob';

export interface Reached {
  descriptor: Descriptor;
  role: Role;
}

/** True when the descriptor names a manifest or index (read and followed). */
export function isManifestLike(d: Descriptor): boolean {
  return INDEX_MEDIA_TYPES.includes(d.mediaType) || MANIFEST_MEDIA_TYPES.includes(d.mediaType);
}

/**
 * Every descriptor reachable from `root` (root included), each once. With `requirePresent`, a
 * missing blob is an error naming it; otherwise missing children are skipped. A blob that is in
 * the store but does not match its descriptor's size is an error either way.
 */
export async function reachable(store: ContentStore, root: Descriptor, opts: { requirePresent?: boolean } = {}): Promise<Reached[]> {
  const seen = new Map<string, Reached>();
  const visit = async (d: Descriptor, role: Role, depth: number): Promise<void> => {
    if (seen.has(d.digest)) return;
    if (depth > 8) throw new PierError(`image index nesting deeper than 8 at ${d.digest}`);
    const info = store.info(d.digest);
    if (!info) {
      // Foreign layers (with urls) are allowed to be absent: they are fetched from elsewhere.
      if (opts.requirePresent && !(role === 'layer' && d.urls?.length)) {
        throw new PierError(`image is incomplete: ${role} blob ${d.digest} is missing from the store`);
      }
      seen.set(d.digest, { descriptor: d, role });
      return;
    }
    if (info.size !== d.size) throw new PierError(`${role} blob ${d.digest} has ${info.size} bytes, but its descriptor says ${d.size}`);
    if (role === 'config' || role === 'layer' || !isManifestLike(d)) {
      seen.set(d.digest, { descriptor: d, role: role === 'index' || role === 'manifest' ? 'blob' : role });
      return;
    }
    const data = await store.readBytes(d.digest);
    const kind = manifestKind(data, d.mediaType, `manifest ${d.digest}`);
    seen.set(d.digest, { descriptor: d, role: kind });
    if (kind === 'index') {
      const idx = parseIndex(data, d.mediaType, `index ${d.digest}`);
      for (const m of idx.manifests) await visit(m, isManifestLike(m) ? 'manifest' : 'blob', depth + 1);
    } else {
      const m = parseManifest(data, d.mediaType, `manifest ${d.digest}`);
      await visit(m.config, 'config', depth + 1);
      for (const l of m.layers) await visit(l, 'layer', depth + 1);
    }
  };
  await visit(root, INDEX_MEDIA_TYPES.includes(root.mediaType) ? 'index' : 'manifest', 0);
  return [...seen.values()];
}
