/**
 * The registry's content model over a `StorageDriver`: a shared blob pool plus per-repository links.
 *
 *   blobs/<alg>/<hex>                                    blob bytes (manifests too, exact bytes)
 *   repositories/<name>/_layers/<alg>/<hex>              link: the blob belongs to the repository
 *   repositories/<name>/_manifests/revisions/<alg>/<hex> link: {"mediaType","size"} of a manifest
 *   repositories/<name>/_manifests/tags/<tag>            the digest the tag names
 *   repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  descriptor of a manifest whose subject is <alg>:<hex>
 *   _uploads/<uuid>/{data,state.json}                    an upload session
 *
 * Repository name components start with [a-z0-9], so `_…` names never collide with a repository.
 * A blob is only ever written to the pool by an atomic rename after its digest was verified.
 */
import { randomUUID } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest, newHash, digestOf, type DigestAlgorithm } from '../../common/digest.ts';
import { messageOf } from '../../common/errors.ts';
import { parseIndex, parseManifest, INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, isValidTag, type Descriptor } from '../../image/index.ts';
import { RegistryError } from './errors.ts';
import type { StorageDriver } from './storage.ts';
import { isSocketBody, type SocketBody } from './native-io.ts';
import { newSha256, type Sha256 } from './sha256.ts';
import { KeyedMutex } from '../../common/keyed-mutex.ts';

export const NAME_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
export const MAX_NAME = 255;
export const MAX_MANIFEST = 4 * 1024 * 1024;

export interface UploadState {
  repo: string;
  /** bytes acknowledged to the client; data beyond this (an interrupted chunk) is cut off */
  offset: number;
  startedAt: string;
}

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  size: number;
}

export function checkName(name: string): void {
  if (name.length > MAX_NAME || !NAME_RE.test(name)) {
    throw new RegistryError('NAME_INVALID', 400, { message: `invalid repository name ${JSON.stringify(name)}`, detail: { name } });
  }
}

export function checkDigest(d: string | null | undefined): { algorithm: DigestAlgorithm; hex: string; digest: string } {
  if (!d) throw new RegistryError('DIGEST_INVALID', 400, { message: 'a digest is required' });
  try {
    const p = parseDigest(d);
    return { ...p, digest: d };
  } catch (err) {
    throw new RegistryError('DIGEST_INVALID', 400, { message: messageOf(err), detail: { digest: d } });
  }
}

const blobKey = (digest: string) => { const { algorithm, hex } = parseDigest(digest); return join('blobs', algorithm, hex); };
const repoKey = (name: string, ...rest: string[]) => join('repositories', name, ...rest);
const linkPath = (digest: string) => { const { algorithm, hex } = parseDigest(digest); return join(algorithm, hex); };

/** OCI's non-distributable layer types and Docker's foreign layer: their bytes are fetched from `urls`. */
const isForeignLayer = (mediaType: string) =>
  mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.') || mediaType === 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Live sha256 states kept at once; the oldest are dropped (their sessions re-hash at commit). */
const MAX_LIVE_HASHES = 4096;

/** The sha256 state of an upload session's first `offset` bytes, kept while this process serves it. */
interface LiveHash {
  hash: Sha256;
  offset: number;
}

/** A request body: a stream, or one the addon reads off the connection (native-io.ts). */
export type UploadBody = AsyncIterable<Uint8Array> | SocketBody;

/** Every repository in the storage (a directory with manifests or layer links), sorted. */
export async function listRepositories(d: StorageDriver, dir = 'repositories', prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const n of await d.list(dir)) {
    if (n.startsWith('_')) continue;
    const st = await d.stat(join(dir, n));
    if (!st?.isDir) continue;
    const name = prefix ? `${prefix}/${n}` : n;
    const kids = await d.list(join(dir, n));
    if (kids.includes('_manifests') || kids.includes('_layers')) out.push(name);
    out.push(...await listRepositories(d, join(dir, n), name));
  }
  return prefix ? out : out.sort();
}

export class RegistryStore {
  readonly driver: StorageDriver;
  private locks = new KeyedMutex();
  /**
   * Per upload session, sha256 of the acknowledged bytes, updated as chunks are appended, so the
   * final PUT need not read the data back. Sessions are sticky to this process; after a restart a
   * session has no entry and its commit re-hashes the data file.
   */
  private live = new Map<string, LiveHash>();

  /** A referrers response larger than this is split into pages joined by `Link` (default: the manifest limit). */
  readonly referrersPageBytes: number;

  constructor(driver: StorageDriver, opts: { referrersPageBytes?: number } = {}) {
    this.driver = driver;
    this.referrersPageBytes = opts.referrersPageBytes ?? MAX_MANIFEST;
  }

  /** Run fn with the upload session (or other key) locked against concurrent requests. */
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(key, fn);
  }

  async repoExists(name: string): Promise<boolean> {
    return (await this.driver.stat(repoKey(name)))?.isDir === true;
  }

  // ---- blobs ----

  async poolStat(digest: string): Promise<number | undefined> {
    return (await this.driver.stat(blobKey(digest)))?.size;
  }

  /** Size of a blob in a repository (linked as a layer or a manifest), or undefined. */
  async blobStat(name: string, digest: string): Promise<number | undefined> {
    const linked = (await this.driver.stat(repoKey(name, '_layers', linkPath(digest)))) ?? (await this.driver.stat(repoKey(name, '_manifests', 'revisions', linkPath(digest))));
    if (!linked) return undefined;
    return this.poolStat(digest);
  }

  blobReader(digest: string, range?: { start: number; end: number }) {
    return this.driver.reader(blobKey(digest), range);
  }

  /** The pool file of a blob, open, with its size; undefined when the driver has no files (or it is gone). */
  async openBlob(digest: string): Promise<{ fh: FileHandle; size: number } | undefined> {
    const fh = await this.driver.open?.(blobKey(digest));
    if (!fh) return undefined;
    try {
      return { fh, size: (await fh.stat()).size };
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  async linkBlob(name: string, digest: string): Promise<void> {
    await this.driver.putFile(repoKey(name, '_layers', linkPath(digest)), digest);
  }

  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    const k = repoKey(name, '_layers', linkPath(digest));
    if (!(await this.driver.stat(k))) return false;
    await this.driver.delete(k);
    return true;
  }

  // ---- uploads ----

  async createUpload(repo: string): Promise<string> {
    const id = randomUUID();
    const state: UploadState = { repo, offset: 0, startedAt: new Date().toISOString() };
    await this.driver.putFile(join('_uploads', id, 'data'), new Uint8Array());
    await this.driver.putFile(join('_uploads', id, 'state.json'), JSON.stringify(state));
    this.setLive(id, { hash: newSha256(), offset: 0 });
    return id;
  }

  private setLive(id: string, h: LiveHash): void {
    this.live.delete(id);
    this.live.set(id, h);
    if (this.live.size > MAX_LIVE_HASHES) {
      const oldest = this.live.keys().next().value;
      if (oldest !== undefined) this.live.delete(oldest);
    }
  }

  /** The session's state, with any bytes past the acknowledged offset cut off (after a crash). */
  async getUpload(repo: string, id: string): Promise<UploadState> {
    const unknown = () => new RegistryError('BLOB_UPLOAD_UNKNOWN', 404, { detail: { uuid: id } });
    if (!UUID_RE.test(id)) throw unknown();
    const raw = await this.driver.read(join('_uploads', id, 'state.json'));
    if (!raw) throw unknown();
    let state: UploadState;
    try { state = JSON.parse(raw.toString('utf8')) as UploadState; } catch { throw unknown(); }
    if (state.repo !== repo) throw unknown();
    const data = await this.driver.stat(join('_uploads', id, 'data'));
    if (!data) throw unknown();
    if (data.size > state.offset) await this.cutData(id, state.offset);
    else if (data.size < state.offset) {
      state.offset = data.size;
      await this.saveUpload(id, state);
    }
    return state;
  }

  private async cutData(id: string, offset: number): Promise<void> {
    await this.driver.truncate(join('_uploads', id, 'data'), offset);
  }

  async saveUpload(id: string, state: UploadState): Promise<void> {
    await this.driver.putFile(join('_uploads', id, 'state.json'), JSON.stringify(state));
  }

  /**
   * Append a request body at the session's offset, hashing it as it is written; on a failed write
   * the data is cut back and the live hash stays at the old offset (the chunk went into a copy).
   * `save: false` when a commit follows at once.
   */
  async appendUpload(id: string, state: UploadState, body: UploadBody, expect?: number, opts: { save?: boolean } = {}): Promise<UploadState> {
    const cur = this.live.get(id);
    const h = cur && cur.offset === state.offset ? cur.hash.copy() : undefined;
    const dataKey = join('_uploads', id, 'data');
    let n: number;
    try {
      if (!isSocketBody(body)) n = await this.driver.append(dataKey, body, h ? (b) => h.update(b) : undefined);
      else if (this.driver.appendFromSocket) n = await this.driver.appendFromSocket(dataKey, body, h?.state ? h : undefined);
      else throw new RegistryError('UNSUPPORTED', 500, { message: 'this storage driver cannot take a request body off the connection' });
    } catch (err) {
      await this.cutData(id, state.offset);
      throw err;
    }
    if (expect !== undefined && n !== expect) {
      await this.cutData(id, state.offset);
      throw new RegistryError('SIZE_INVALID', 400, { message: `chunk has ${n} bytes, Content-Range says ${expect}` });
    }
    const next = { ...state, offset: state.offset + n };
    // a commit that follows at once (PUT with the last chunk) need not record the offset: if it fails
    // or the process dies first, the chunk was never acknowledged and is cut off when next touched
    if (opts.save !== false) await this.saveUpload(id, next);
    if (h && (!isSocketBody(body) || h.state)) this.setLive(id, { hash: h, offset: next.offset });
    else this.live.delete(id);
    return next;
  }

  /**
   * Digest and size of the session's data: from the live hash when it covers exactly the bytes on
   * disk, else (after a restart, or for sha512) by reading the data file from the start.
   */
  private async uploadDigest(id: string, algorithm: DigestAlgorithm): Promise<{ actual: string; size: number }> {
    const dataKey = join('_uploads', id, 'data');
    const cur = this.live.get(id);
    this.live.delete(id);
    const onDisk = (await this.driver.stat(dataKey))?.size;
    if (cur && algorithm === 'sha256' && onDisk === cur.offset) return { actual: `sha256:${cur.hash.hex()}`, size: cur.offset };
    const h = newHash(algorithm);
    let size = 0;
    for await (const chunk of this.driver.reader(dataKey) as AsyncIterable<Buffer>) {
      h.update(chunk);
      size += chunk.length;
    }
    return { actual: `${algorithm}:${h.digest('hex')}`, size };
  }

  /** Verify the session's data against digest; on success move it into the pool and link it. */
  async commitUpload(repo: string, id: string, digest: string): Promise<number> {
    const { algorithm } = checkDigest(digest);
    const dataKey = join('_uploads', id, 'data');
    const { actual, size } = await this.uploadDigest(id, algorithm);
    if (actual !== digest) {
      await this.deleteUpload(id);
      throw new RegistryError('DIGEST_INVALID', 400, { message: `provided digest ${digest} does not match uploaded content (${actual})`, detail: { digest } });
    }
    if ((await this.poolStat(digest)) === undefined) await this.driver.moveIn(dataKey, blobKey(digest));
    await this.linkBlob(repo, digest);
    await this.deleteUpload(id);
    return size;
  }

  async deleteUpload(id: string): Promise<void> {
    this.live.delete(id);
    await this.driver.delete(join('_uploads', id));
  }

  /** Store bytes whose digest is known-correct (computed here) in the pool. */
  private async putBlobBytes(digest: string, data: Uint8Array): Promise<void> {
    if ((await this.poolStat(digest)) !== undefined) return;
    const tmp = join('_uploads', `put-${randomUUID()}`);
    await this.driver.putFile(tmp, data);
    try { await this.driver.moveIn(tmp, blobKey(digest)); } finally { await this.driver.delete(tmp); }
  }

  // ---- manifests ----

  async resolveManifest(name: string, ref: string): Promise<ManifestRecord | undefined> {
    let digest = ref;
    if (!ref.includes(':')) {
      const t = await this.driver.read(repoKey(name, '_manifests', 'tags', ref));
      if (!t) return undefined;
      digest = t.toString('utf8').trim();
    }
    const link = await this.driver.read(repoKey(name, '_manifests', 'revisions', linkPath(digest)));
    if (!link) return undefined;
    const meta = JSON.parse(link.toString('utf8')) as { mediaType: string; size: number };
    if ((await this.poolStat(digest)) === undefined) return undefined;
    return { digest, mediaType: meta.mediaType, size: meta.size };
  }

  async readBlob(digest: string): Promise<Buffer | undefined> {
    return this.driver.read(blobKey(digest));
  }

  /**
   * Validate and store a manifest exactly as received. Returns its digest and the subject digest
   * when it has one (for `OCI-Subject`).
   */
  /**
   * Store a pushed manifest. `cached`: a pull-through cache keeping what its upstream served, whose
   * blobs come later, when asked for (so they are not required to be here).
   */
  async putManifest(name: string, ref: string, contentType: string, body: Buffer, extraTags: string[] = [], opts: { cached?: boolean } = {}): Promise<{ digest: string; subject?: string; tags: string[] }> {
    const isDigestRef = ref.includes(':');
    let algorithm: DigestAlgorithm = 'sha256';
    if (isDigestRef) algorithm = checkDigest(ref).algorithm;
    const tags = isDigestRef ? [...new Set(extraTags)] : [ref];
    for (const t of tags) {
      if (!isValidTag(t)) throw new RegistryError('MANIFEST_INVALID', 400, { message: `invalid tag ${JSON.stringify(t)}`, detail: { tag: t } });
    }
    const digest = digestOf(body, algorithm);
    if (isDigestRef && digest !== ref) {
      throw new RegistryError('DIGEST_INVALID', 400, { message: `manifest digest ${digest} does not match ${ref}`, detail: { digest: ref } });
    }
    const mediaType = contentType.split(';')[0].trim();
    let parsed: unknown;
    try { parsed = JSON.parse(body.toString('utf8')); } catch (err) {
      throw new RegistryError('MANIFEST_INVALID', 400, { message: `manifest is not JSON: ${messageOf(err)}` });
    }
    const mt = mediaType || (parsed && typeof parsed === 'object' && typeof (parsed as { mediaType?: unknown }).mediaType === 'string' ? (parsed as { mediaType: string }).mediaType : '');
    let refs: Descriptor[];
    let subject: Descriptor | undefined;
    let artifactType: string | undefined;
    let annotations: Record<string, string> | undefined;
    try {
      if (MANIFEST_MEDIA_TYPES.includes(mt)) {
        const m = parseManifest(body, mt);
        refs = [m.config, ...m.layers];
        subject = m.subject;
        artifactType = m.artifactType ?? m.config.mediaType;
        annotations = m.annotations;
      } else if (INDEX_MEDIA_TYPES.includes(mt)) {
        const ix = parseIndex(body, mt);
        refs = ix.manifests;
        subject = ix.subject;
        artifactType = ix.artifactType;
        annotations = ix.annotations;
      } else {
        throw new RegistryError('MANIFEST_INVALID', 400, { message: `unsupported manifest media type ${JSON.stringify(mt)}`, detail: { mediaType: mt } });
      }
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError('MANIFEST_INVALID', 400, { message: messageOf(err) });
    }
    const isIndex = INDEX_MEDIA_TYPES.includes(mt);
    for (const d of opts.cached ? [] : refs) {
      // non-distributable (foreign) layers live elsewhere, named by `urls`: nothing to find here
      if (!isIndex && isForeignLayer(d.mediaType)) continue;
      const ok = isIndex ? await this.resolveManifest(name, d.digest) : await this.blobStat(name, d.digest) !== undefined ? true : undefined;
      if (!ok && !(d.data !== undefined)) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', 400, { message: `manifest references ${d.digest}, which is not in repository ${name}`, detail: { digest: d.digest } });
      }
    }
    await this.putBlobBytes(digest, body);
    await this.driver.putFile(repoKey(name, '_manifests', 'revisions', linkPath(digest)), JSON.stringify({ mediaType: mt, size: body.length, subject: subject?.digest }));
    if (subject) {
      const desc: Descriptor = { mediaType: mt, digest, size: body.length };
      if (artifactType) desc.artifactType = artifactType;
      if (annotations) desc.annotations = annotations;
      const s = parseDigest(subject.digest);
      const m = parseDigest(digest);
      await this.driver.putFile(repoKey(name, '_referrers', s.algorithm, s.hex, `${m.algorithm}-${m.hex}`), JSON.stringify(desc));
    }
    for (const t of tags) await this.driver.putFile(repoKey(name, '_manifests', 'tags', t), digest);
    return { digest, subject: subject?.digest, tags };
  }

  /** Delete by tag (the tag only) or by digest (the revision, every tag naming it, its referrer entry). */
  async deleteManifest(name: string, ref: string): Promise<boolean> {
    if (!ref.includes(':')) {
      const k = repoKey(name, '_manifests', 'tags', ref);
      if (!(await this.driver.stat(k))) return false;
      await this.driver.delete(k);
      return true;
    }
    const revKey = repoKey(name, '_manifests', 'revisions', linkPath(ref));
    const link = await this.driver.read(revKey);
    if (!link) return false;
    const meta = JSON.parse(link.toString('utf8')) as { subject?: string };
    for (const tag of await this.tags(name)) {
      const t = await this.driver.read(repoKey(name, '_manifests', 'tags', tag));
      if (t && t.toString('utf8').trim() === ref) await this.driver.delete(repoKey(name, '_manifests', 'tags', tag));
    }
    if (meta.subject) {
      const s = parseDigest(meta.subject);
      const m = parseDigest(ref);
      await this.driver.delete(repoKey(name, '_referrers', s.algorithm, s.hex, `${m.algorithm}-${m.hex}`));
    }
    await this.driver.delete(revKey);
    return true;
  }

  async repositories(): Promise<string[]> {
    return listRepositories(this.driver);
  }

  async tags(name: string): Promise<string[]> {
    return (await this.driver.list(repoKey(name, '_manifests', 'tags'))).filter((t) => isValidTag(t)).sort();
  }

  async referrers(name: string, digest: string): Promise<Descriptor[]> {
    const s = parseDigest(digest);
    const dir = repoKey(name, '_referrers', s.algorithm, s.hex);
    const out: Descriptor[] = [];
    for (const f of (await this.driver.list(dir)).sort()) {
      const raw = await this.driver.read(join(dir, f));
      if (!raw) continue;
      const desc = JSON.parse(raw.toString('utf8')) as Descriptor;
      if (await this.resolveManifest(name, desc.digest)) out.push(desc);
    }
    // a client that saw no OCI-Subject (another registry, before a copy) keeps an index under the
    // fallback tag `<alg>-<hex>`; its entries count as referrers too
    const fallback = await this.resolveManifest(name, `${s.algorithm}-${s.hex.slice(0, 64)}`);
    if (fallback && INDEX_MEDIA_TYPES.includes(fallback.mediaType)) {
      const raw = await this.readBlob(fallback.digest);
      try {
        const ix = parseIndex(raw ?? '', fallback.mediaType);
        for (const d of ix.manifests) if (!out.some((o) => o.digest === d.digest)) out.push(d);
      } catch { /* not a readable index: no fallback entries */ }
    }
    return out;
  }
}
