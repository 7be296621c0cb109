/**
 * OCI image layouts in and out: importing copies every blob an index.json entry reaches (each one
 * verified against its descriptor); exporting writes a layout (directory or oci-archive tar) of
 * the given refs whose index.json names each by its tag, as skopeo's `oci:DIR:TAG` and
 * `umoci --image DIR:TAG` look them up.
 */
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, copyFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { open } from 'node:fs/promises';
import { pack } from 'tar-stream';
import { PierError, errnoOf } from '../../common/errors.ts';
import { parseDigest } from '../../common/digest.ts';
import { writeFileAtomic } from '../../common/atomic.ts';
import type { ContentStore } from '../store/content.ts';
import { OCI_LAYOUT } from '../store/content.ts';
import { reachable, isManifestLike } from '../store/walk.ts';
import { ANNOTATIONS, CONFIG_MEDIA_TYPES, MEDIA_TYPES, type Descriptor, type ImageIndex } from '../oci/types.ts';
import { manifestKind, parseConfig, parseIndex, parseJSON, parseManifest } from '../oci/validate.ts';
import { parseReference } from '../oci/reference.ts';
import type { Source } from './source.ts';

export function blobMember(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

/** Copy one descriptor's tree from a layout source into the store. */
async function copyTree(src: Source, store: ContentStore, d: Descriptor, role: string, depth: number): Promise<void> {
  if (depth > 8) throw new PierError(`${src.label}: image index nesting deeper than 8`);
  const member = blobMember(d.digest);
  if (!src.has(member)) {
    if (role === 'layer' && d.urls?.length) return;
    throw new PierError(`${src.label}: ${role} blob ${d.digest} is missing`);
  }
  await src.storeMember(member, { digest: d.digest, size: d.size });
  if (role !== 'manifest' && role !== 'index') return;
  const data = await store.readBytes(d.digest);
  const kind = manifestKind(data, d.mediaType, `manifest ${d.digest}`);
  if (kind === 'index') {
    const idx = parseIndex(data, d.mediaType, `index ${d.digest}`);
    for (const m of idx.manifests) await copyTree(src, store, m, isManifestLike(m) ? 'manifest' : 'blob', depth + 1);
    return;
  }
  const m = parseManifest(data, d.mediaType, `manifest ${d.digest}`);
  await copyTree(src, store, m.config, 'config', depth + 1);
  if (CONFIG_MEDIA_TYPES.includes(m.config.mediaType)) {
    parseConfig(await store.readBytes(m.config.digest), m, `config ${m.config.digest}`);
  }
  for (const l of m.layers) await copyTree(src, store, l, 'layer', depth + 1);
}

/** Read a layout's index.json and copy everything it reaches into the store; returns its entries. */
export async function importLayout(src: Source, store: ContentStore): Promise<Descriptor[]> {
  if (src.has('oci-layout')) {
    const layout = parseJSON(await src.readBytes('oci-layout'), `${src.label}: oci-layout`) as { imageLayoutVersion?: unknown };
    if (typeof layout?.imageLayoutVersion !== 'string') throw new PierError(`${src.label}: oci-layout has no imageLayoutVersion`);
  }
  if (!src.has('index.json')) throw new PierError(`${src.label}: not an OCI image layout (no index.json)`);
  const index = parseIndex(await src.readBytes('index.json'), undefined, `${src.label}: index.json`);
  if (index.manifests.length === 0) throw new PierError(`${src.label}: index.json lists no images`);
  for (const d of index.manifests) {
    await copyTree(src, store, d, INDEX_ROLE(d), 0);
  }
  return index.manifests;
}

function INDEX_ROLE(d: Descriptor): string {
  return d.mediaType === MEDIA_TYPES.ociIndex || d.mediaType === MEDIA_TYPES.dockerManifestList ? 'index' : 'manifest';
}

export interface ExportItem {
  /** normalised local ref, `name:tag` */
  ref: string;
  descriptor: Descriptor;
}

/** The index.json entry for one exported ref: ref.name is the tag, the full name rides along. */
function exportEntry(item: ExportItem): Descriptor {
  const r = parseReference(item.ref);
  const { mediaType, digest, size, platform } = item.descriptor;
  return {
    mediaType, digest, size,
    ...(platform ? { platform } : {}),
    annotations: { [ANNOTATIONS.containerdName]: item.ref, [ANNOTATIONS.refName]: r.tag ?? 'latest' },
  };
}

function checkTags(items: ExportItem[]): void {
  const byTag = new Map<string, string>();
  for (const it of items) {
    const tag = parseReference(it.ref).tag ?? 'latest';
    const other = byTag.get(tag);
    if (other && other !== it.ref) {
      throw new PierError(`cannot export ${other} and ${it.ref} together: an OCI layout names images by tag, and both are ${JSON.stringify(tag)}`);
    }
    byTag.set(tag, it.ref);
  }
}

async function blobsOf(store: ContentStore, items: ExportItem[]): Promise<Descriptor[]> {
  const all = new Map<string, Descriptor>();
  for (const it of items) {
    for (const r of await reachable(store, it.descriptor, { requirePresent: true })) {
      if (store.has(r.descriptor.digest)) all.set(r.descriptor.digest, r.descriptor);
    }
  }
  return [...all.values()];
}

function isEmptyDir(p: string): boolean {
  try { return readdirSync(p).length === 0; } catch { return false; }
}

/**
 * Write `items` as an OCI layout directory. A new directory is built beside `dest` and renamed
 * into place; an existing layout gets the blobs added and its index.json entries for the same
 * tags replaced.
 */
export async function exportLayoutDir(store: ContentStore, items: ExportItem[], dest: string): Promise<void> {
  checkTags(items);
  const blobs = await blobsOf(store, items);
  const entries = items.map(exportEntry);
  if (existsSync(join(dest, 'oci-layout'))) {
    const idxPath = join(dest, 'index.json');
    const index: ImageIndex = existsSync(idxPath)
      ? parseIndex(readFileSync(idxPath), undefined, `${dest}: index.json`)
      : { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] };
    copyBlobs(store, blobs, dest);
    const tags = new Set(entries.map((e) => e.annotations![ANNOTATIONS.refName]));
    index.manifests = [...index.manifests.filter((m) => !tags.has(m.annotations?.[ANNOTATIONS.refName] ?? '')), ...entries];
    writeFileAtomic(idxPath, JSON.stringify(index), { fsync: true });
    return;
  }
  const fresh = !existsSync(dest);
  if (!fresh && !isEmptyDir(dest)) throw new PierError(`${dest} exists and is neither empty nor an OCI image layout`);
  const tmp = fresh ? join(dirname(dest), `.${basename(dest)}.pier-${randomBytes(4).toString('hex')}`) : dest;
  try {
    mkdirSync(tmp, { recursive: true });
    writeFileAtomic(join(tmp, 'oci-layout'), OCI_LAYOUT);
    copyBlobs(store, blobs, tmp);
    const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: entries };
    writeFileAtomic(join(tmp, 'index.json'), JSON.stringify(index), { fsync: true });
    if (fresh) renameSync(tmp, dest);
  } catch (err) {
    if (fresh) rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

function copyBlobs(store: ContentStore, blobs: Descriptor[], dir: string): void {
  for (const b of blobs) {
    const { algorithm } = parseDigest(b.digest);
    const to = join(dir, blobMember(b.digest));
    mkdirSync(join(dir, 'blobs', algorithm), { recursive: true });
    try {
      if (statSync(to).size === b.size) continue;
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
    const tmp = `${to}.pier-${randomBytes(4).toString('hex')}`;
    copyFileSync(store.blobPath(b.digest), tmp);
    renameSync(tmp, to);
  }
}

/** Write `items` as an oci-archive: an OCI layout in a tar, written aside and renamed into place. */
export async function exportLayoutArchive(store: ContentStore, items: ExportItem[], dest: string): Promise<void> {
  checkTags(items);
  const blobs = await blobsOf(store, items);
  const index: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: items.map(exportEntry) };
  const tmp = join(dirname(dest), `.${basename(dest)}.pier-${randomBytes(4).toString('hex')}`);
  const p = pack();
  const mtime = new Date(0);
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
  const writing = pipeline(p as unknown as NodeJS.ReadableStream, out);
  const add = (name: string, data: Buffer) => new Promise<void>((resolve, reject) => {
    p.entry({ name, size: data.length, mode: 0o644, mtime, type: 'file' }, data, (err) => (err ? reject(err) : resolve()));
  });
  const dir = (name: string) => new Promise<void>((resolve, reject) => {
    p.entry({ name, mode: 0o755, mtime, type: 'directory' }, (err) => (err ? reject(err) : resolve()));
  });
  try {
    await add('oci-layout', Buffer.from(OCI_LAYOUT));
    await add('index.json', Buffer.from(JSON.stringify(index)));
    await dir('blobs/');
    const algos = [...new Set(blobs.map((b) => parseDigest(b.digest).algorithm))];
    for (const a of algos) await dir(`blobs/${a}/`);
    for (const b of blobs) {
      await new Promise<void>((resolve, reject) => {
        const sink = p.entry({ name: blobMember(b.digest), size: b.size, mode: 0o644, mtime, type: 'file' }, (err) => (err ? reject(err) : resolve()));
        const rs = store.readStream(b.digest);
        rs.on('error', reject);
        rs.pipe(sink as unknown as NodeJS.WritableStream);
      });
    }
    p.finalize();
    await writing;
    const fd = await open(tmp, 'r');
    await fd.sync();
    await fd.close();
    renameSync(tmp, dest);
  } catch (err) {
    p.destroy();
    rmSync(tmp, { force: true });
    throw err;
  }
}
