/**
 * The local ref index: the store layout's index.json, whose manifests each carry
 * `org.opencontainers.image.ref.name` = the full normalised ref (`busybox:latest`). Updates hold
 * the index lock and replace the file atomically; reads are lock-free (rename is atomic).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PierError, errnoOf } from '../../common/errors.ts';
import { writeFileAtomic } from '../../common/atomic.ts';
import { ANNOTATIONS, MEDIA_TYPES, type Descriptor, type ImageIndex } from '../oci/types.ts';
import { parseIndex } from '../oci/validate.ts';
import { formatReference, parseReference } from '../oci/reference.ts';
import { withLock } from './lock.ts';

export interface RefEntry {
  /** normalised `name:tag` (or `name@digest`, see setMany) */
  ref: string;
  descriptor: Descriptor;
}

export class RefIndex {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  get path(): string { return join(this.root, 'index.json'); }
  get lockPath(): string { return join(this.root, 'index.json.lock'); }

  /** The index as stored (an empty one if the store is new). */
  read(): ImageIndex {
    let data: Buffer;
    try {
      data = readFileSync(this.path);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
      throw err;
    }
    return parseIndex(data, undefined, `image store index ${this.path}`);
  }

  list(): RefEntry[] {
    const out: RefEntry[] = [];
    for (const d of this.read().manifests) {
      const ref = d.annotations?.[ANNOTATIONS.refName];
      if (ref) out.push({ ref, descriptor: d });
    }
    return out;
  }

  /** The descriptor tagged `ref` (a normalised `name:tag`), or undefined. */
  get(ref: string): Descriptor | undefined {
    return this.list().find((e) => e.ref === ref)?.descriptor;
  }

  /** Run `fn` holding the index lock. */
  locked<T>(fn: () => Promise<T> | T): Promise<T> {
    return withLock(this.lockPath, fn);
  }

  private write(index: ImageIndex): void {
    writeFileAtomic(this.path, JSON.stringify(index, null, 2) + '\n', { fsync: true });
  }

  /**
   * Point `ref` (which must have a tag and no digest) at `descriptor`, replacing what it named.
   * `check` runs under the lock first: the caller verifies the image is complete there, so a
   * concurrent prune cannot leave a tag that names deleted blobs.
   */
  async set(ref: string, descriptor: Descriptor, check?: () => Promise<void>): Promise<void> {
    await this.setMany([{ ref, descriptor }], check);
  }

  /**
   * Several tags in one index update: all of them land, or none. A ref is `name:tag`, or
   * `name@digest` naming exactly that descriptor (what a pull by digest keeps: no tag to give it).
   */
  async setMany(entries: RefEntry[], check?: () => Promise<void>): Promise<void> {
    const named = entries.map((e) => {
      const r = parseReference(e.ref);
      if (r.digest !== undefined && r.tag === undefined && r.digest === e.descriptor.digest) {
        return { name: formatReference({ name: r.name, digest: r.digest }), descriptor: e.descriptor };
      }
      if (r.digest !== undefined || r.tag === undefined) throw new PierError(`cannot tag ${JSON.stringify(e.ref)}: a tag needs name:tag, without a digest`);
      return { name: formatReference({ name: r.name, tag: r.tag }), descriptor: e.descriptor };
    });
    await this.locked(async () => {
      if (check) await check();
      const index = this.read();
      for (const { name, descriptor } of named) {
        const clean: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
        if (descriptor.platform) clean.platform = descriptor.platform;
        const { [ANNOTATIONS.containerdName]: _dropped, ...kept } = descriptor.annotations ?? {};
        const annotations = { ...kept, [ANNOTATIONS.refName]: name };
        index.manifests = index.manifests.filter((d) => d.annotations?.[ANNOTATIONS.refName] !== name);
        index.manifests.push({ ...clean, annotations });
      }
      index.manifests.sort((a, b) => (a.annotations?.[ANNOTATIONS.refName] ?? '').localeCompare(b.annotations?.[ANNOTATIONS.refName] ?? ''));
      this.write(index);
    });
  }

  /** Remove the given refs; returns the descriptors they named. Unknown refs are an error (nothing removed). */
  async remove(refs: string[]): Promise<RefEntry[]> {
    return this.locked(() => {
      const index = this.read();
      const removed: RefEntry[] = [];
      for (const ref of refs) {
        const d = index.manifests.find((m) => m.annotations?.[ANNOTATIONS.refName] === ref);
        if (!d) throw new PierError(`image ${JSON.stringify(ref)} not found`);
        removed.push({ ref, descriptor: d });
      }
      index.manifests = index.manifests.filter((m) => !refs.includes(m.annotations?.[ANNOTATIONS.refName] ?? ''));
      this.write(index);
      return removed;
    });
  }

  exists(): boolean {
    return existsSync(this.path);
  }
}
