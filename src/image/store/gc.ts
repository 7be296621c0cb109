/**
 * Garbage collection: mark everything reachable from index.json (and from live leases of imports
 * in flight), sweep the other blobs, and clear ingest temp files older than an hour (younger ones
 * may belong to a write in progress). Runs under the index lock so no tag lands mid-sweep.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ContentStore, BlobInfo } from './content.ts';
import type { RefIndex } from './refs.ts';
import { reachable } from './walk.ts';

export const INGEST_MAX_AGE_MS = 60 * 60 * 1000;

export interface GcResult {
  /** blobs removed (or that would be, with dryRun) */
  removed: BlobInfo[];
  /** stale ingest files removed */
  ingest: string[];
  freedBytes: number;
  dryRun: boolean;
}

export async function collectGarbage(store: ContentStore, refs: RefIndex, opts: { dryRun?: boolean; now?: number } = {}): Promise<GcResult> {
  const dryRun = opts.dryRun ?? false;
  const now = opts.now ?? Date.now();
  return refs.locked(async () => {
    // List before marking: a blob that lands after this listing is never swept this round.
    const blobs = store.list();
    const marked = new Set<string>(store.leasedDigests());
    for (const d of refs.read().manifests) {
      for (const r of await reachable(store, d)) marked.add(r.descriptor.digest);
    }
    const removed: BlobInfo[] = [];
    let freedBytes = 0;
    for (const b of blobs) {
      if (marked.has(b.digest)) continue;
      if (!dryRun && !store.delete(b.digest)) continue;
      removed.push(b);
      freedBytes += b.size;
    }
    const ingest: string[] = [];
    let names: string[] = [];
    try { names = readdirSync(store.ingestDir); } catch { /* no ingest dir yet */ }
    for (const n of names) {
      const p = join(store.ingestDir, n);
      try {
        const st = statSync(p);
        if (now - st.mtimeMs < INGEST_MAX_AGE_MS) continue;
        if (!dryRun) rmSync(p, { recursive: true, force: true });
        ingest.push(n);
        freedBytes += st.size;
      } catch { /* finished meanwhile */ }
    }
    return { removed, ingest, freedBytes, dryRun };
  });
}
