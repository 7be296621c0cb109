/**
 * The build cache index: one small JSON file per step key under `images/build-cache/`, naming the
 * layer (if the step made one) and the history entry it produced. Keys are hashes of the step's
 * inputs chained from the parent step's key, so a change anywhere invalidates every later step.
 * Blobs are not held by the cache: gc may collect them, and a hit is only a hit while the blob exists.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic.ts';
import { errnoOf } from '../../common/errors.ts';
import type { HistoryEntry } from '../oci/index.ts';
import type { LayerBlob } from '../layer/index.ts';

export interface CacheEntry {
  layer?: LayerBlob;
  history: HistoryEntry;
}

export function stepKey(parent: string, parts: unknown[]): string {
  return `sha256:${createHash('sha256').update(JSON.stringify([parent, ...parts])).digest('hex')}`;
}

export function randomId(): string {
  return randomBytes(6).toString('hex');
}

export class BuildCache {
  readonly dir: string;
  constructor(imagesDir: string) {
    this.dir = join(imagesDir, 'build-cache');
  }

  private path(key: string): string {
    return join(this.dir, `${key.replace(/^sha256:/, '')}.json`);
  }

  get(key: string): CacheEntry | undefined {
    try {
      const e = JSON.parse(readFileSync(this.path(key), 'utf8')) as CacheEntry;
      return e && typeof e === 'object' && e.history ? e : undefined;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  put(key: string, entry: CacheEntry): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.path(key), JSON.stringify(entry));
  }

  /** Drop every entry (pier build --no-cache leaves the index alone; this is for pruning). */
  clear(): number {
    let n = 0;
    try {
      for (const f of readdirSync(this.dir)) { rmSync(join(this.dir, f), { force: true }); n++; }
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
    return n;
  }
}
