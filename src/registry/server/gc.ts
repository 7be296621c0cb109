/**
 * Mark and sweep over the blob pool. Mark: every manifest revision of every repository (tagged or
 * not) and the config, layers and child manifests it names. Sweep: pool blobs not marked, and the
 * repositories' links to them.
 *
 * Safe against uploads in flight: a session's bytes live under `_uploads/` until committed, and gc
 * only removes sessions untouched for `uploadTtlMs` (7 days); and a blob whose pool file or any repository link is younger than `graceMs` (a
 * commit, a mount or a link made while gc runs) is kept, so a manifest push racing gc still finds
 * its blobs — and a manifest PUT checks the pool itself, so it can never name a swept blob.
 */
import { join } from 'node:path';
import type { StorageDriver } from './storage.ts';
import { listRepositories } from './store.ts';

export interface GcOptions {
  dryRun?: boolean;
  /** keep blobs touched this recently (ms); default 10 minutes */
  graceMs?: number;
  /** delete upload sessions untouched for this long (ms); default 7 days */
  uploadTtlMs?: number;
  now?: number;
}

export interface RegistryGcResult {
  marked: number;
  /** digests removed (or that would be, with dryRun) */
  swept: string[];
  bytes: number;
  /** unreferenced blobs kept because they are younger than the grace period */
  kept: string[];
  /** abandoned upload sessions removed (or that would be) */
  staleUploads: string[];
}

async function digestsUnder(d: StorageDriver, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const alg of await d.list(dir)) for (const hex of await d.list(join(dir, alg))) out.push(`${alg}:${hex}`);
  return out;
}

export async function collectRegistryGarbage(d: StorageDriver, opts: GcOptions = {}): Promise<RegistryGcResult> {
  const now = opts.now ?? Date.now();
  const cutoff = now - (opts.graceMs ?? 10 * 60 * 1000);
  const marked = new Set<string>();
  const repos = await listRepositories(d);
  const recentLinks = new Set<string>();
  for (const repo of repos) {
    const base = join('repositories', repo);
    for (const digest of await digestsUnder(d, join(base, '_manifests', 'revisions'))) {
      marked.add(digest);
      const raw = await d.read(join('blobs', ...digest.split(':')));
      if (!raw) continue;
      let m: { config?: { digest?: string }; layers?: { digest?: string }[]; manifests?: { digest?: string }[] };
      try { m = JSON.parse(raw.toString('utf8')); } catch { continue; }
      for (const desc of [m.config, ...(m.layers ?? []), ...(m.manifests ?? [])]) if (typeof desc?.digest === 'string') marked.add(desc.digest);
    }
    for (const digest of await digestsUnder(d, join(base, '_layers'))) {
      const st = await d.stat(join(base, '_layers', ...digest.split(':')));
      if (st && st.mtimeMs >= cutoff) recentLinks.add(digest);
    }
  }
  const result: RegistryGcResult = { marked: marked.size, swept: [], bytes: 0, kept: [], staleUploads: [] };
  for (const digest of (await digestsUnder(d, 'blobs')).sort()) {
    if (marked.has(digest)) continue;
    const st = await d.stat(join('blobs', ...digest.split(':')));
    if (!st) continue;
    if (st.mtimeMs >= cutoff || recentLinks.has(digest)) { result.kept.push(digest); continue; }
    result.swept.push(digest);
    result.bytes += st.size;
    if (opts.dryRun) continue;
    for (const repo of repos) await d.delete(join('repositories', repo, '_layers', ...digest.split(':')));
    await d.delete(join('blobs', ...digest.split(':')));
  }
  const uploadCutoff = now - (opts.uploadTtlMs ?? 7 * 24 * 3600 * 1000);
  for (const id of await d.list('_uploads')) {
    const st = (await d.stat(join('_uploads', id, 'data'))) ?? (await d.stat(join('_uploads', id)));
    if (!st || st.mtimeMs >= uploadCutoff) continue;
    result.staleUploads.push(id);
    if (!opts.dryRun) await d.delete(join('_uploads', id));
  }
  return result;
}
