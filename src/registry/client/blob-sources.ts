/**
 * Where blobs are known to live remotely: `$PIER_ROOT/registry/blob-sources.json` maps a digest to
 * the `host/repository`s it was pushed to or pulled from, so a push to another repository of the
 * same registry can mount instead of uploading.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic.ts';

const MAX_PER_BLOB = 8;

export class BlobSources {
  readonly path: string;
  private map: Record<string, string[]> | undefined;

  constructor(root: string) {
    this.path = join(root, 'registry', 'blob-sources.json');
  }

  private load(): Record<string, string[]> {
    if (!this.map) {
      try {
        const v = JSON.parse(readFileSync(this.path, 'utf8')) as unknown;
        this.map = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string[]>) : {};
      } catch {
        this.map = {};
      }
    }
    return this.map;
  }

  /** Repositories on `host` other than `exclude` known to hold `digest`. */
  on(host: string, digest: string, exclude: string): string[] {
    const list = this.load()[digest];
    if (!Array.isArray(list)) return [];
    return list.filter((s) => s.startsWith(host + '/')).map((s) => s.slice(host.length + 1)).filter((r) => r !== exclude);
  }

  add(host: string, repository: string, digest: string): void {
    const m = this.load();
    const key = `${host}/${repository}`;
    const list = (Array.isArray(m[digest]) ? m[digest] : []).filter((s) => s !== key);
    m[digest] = [key, ...list].slice(0, MAX_PER_BLOB);
  }

  /** Write the map (merged with what another process may have saved meanwhile). */
  save(): void {
    if (!this.map) return;
    const mine = this.map;
    this.map = undefined;
    const disk = this.load();
    for (const [d, list] of Object.entries(mine)) disk[d] = [...new Set([...list, ...(disk[d] ?? [])])].slice(0, MAX_PER_BLOB);
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.path, JSON.stringify(disk) + '\n');
  }
}
