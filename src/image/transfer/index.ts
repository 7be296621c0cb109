/**
 * Import and export. Import reads an OCI layout (directory or oci-archive tar), a `docker save`
 * tar (or its unpacked directory), or a root filesystem (directory or tar) and tags the result;
 * blobs are verified on the way in and held by a lease until tagged. Export writes OCI layouts.
 */
import { basename } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { PierError } from '../../common/errors.ts';
import type { ContentStore, Lease } from '../store/content.ts';
import type { RefIndex } from '../store/refs.ts';
import { reachable } from '../store/walk.ts';
import { checkLayer } from '../layer/check.ts';
import { parseConfig, parseManifest } from '../oci/validate.ts';
import { ANNOTATIONS, type Descriptor } from '../oci/types.ts';
import { formatReference, isValidTag, parseReference } from '../oci/reference.ts';
import { DirSource, TarSource, type Source } from './source.ts';
import { findMember, ingestTar } from './tar.ts';
import { importLayout, exportLayoutArchive, exportLayoutDir, type ExportItem } from './layout.ts';
import { importDockerSave } from './docker.ts';
import { layerFromDirectory, layerFromTar } from './rootfs.ts';
import { writeImage, DEFAULT_PATH, type NewLayer } from './compose.ts';
import type { ContainerConfig } from '../oci/types.ts';

export type ImportFormat = 'oci-dir' | 'oci-archive' | 'docker-archive' | 'rootfs';
export const IMPORT_FORMATS: readonly ImportFormat[] = ['oci-dir', 'oci-archive', 'docker-archive', 'rootfs'];
export type ExportFormat = 'oci-dir' | 'oci-archive';

export interface ImportOptions {
  /** the local ref to tag (required when the input names no image) */
  ref?: string;
  format?: ImportFormat;
  /** for rootfs imports: the container config (default: Env PATH only) */
  config?: ContainerConfig;
  /** for rootfs imports: fixed creation time (seconds since the epoch) for reproducible images */
  sourceDateEpoch?: number;
}

export interface ImportedImage {
  ref: string;
  descriptor: Descriptor;
}

/** What kind of input `path` is, from its content. */
export async function detectFormat(path: string): Promise<ImportFormat> {
  if (!existsSync(path)) throw new PierError(`${path}: no such file or directory`);
  const st = statSync(path);
  if (st.isDirectory()) {
    if (existsSync(`${path}/oci-layout`) || existsSync(`${path}/index.json`)) return 'oci-dir';
    if (existsSync(`${path}/manifest.json`)) return 'docker-archive';
    return 'rootfs';
  }
  if (!st.isFile()) throw new PierError(`${path}: not a file or directory`);
  const hit = await findMember(path, (n) => n === 'oci-layout' || n === 'manifest.json' || n === 'index.json');
  if (hit === 'oci-layout' || hit === 'index.json') return 'oci-archive';
  if (hit === 'manifest.json') return 'docker-archive';
  return 'rootfs';
}

/** A repository name from a file name: `/tmp/My_App.tar.gz` → `my_app`. */
export function nameFromPath(path: string): string {
  const base = basename(path.replace(/\/+$/, '')).replace(/\.(tar\.gz|tar\.zst|tgz|tar|oci)$/i, '').toLowerCase();
  const cleaned = base.replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '').replace(/[._-]{2,}/g, '-');
  return cleaned || 'imported';
}

/** The local ref for one OCI layout entry, from its annotations. */
function refForLayoutEntry(d: Descriptor, fallbackName: string): string | undefined {
  const full = d.annotations?.[ANNOTATIONS.containerdName];
  if (full) {
    try { return formatReference(parseReference(full)); } catch { /* fall through to ref.name */ }
  }
  const rn = d.annotations?.[ANNOTATIONS.refName];
  if (!rn) return undefined;
  if (!rn.includes(':') && !rn.includes('/') && isValidTag(rn)) return `${fallbackName}:${rn}`;
  return formatReference(parseReference(rn));
}

function chooseLayoutEntries(entries: Descriptor[], opts: ImportOptions, label: string, fallbackName: string): ImportedImage[] {
  if (opts.ref !== undefined) {
    const want = parseReference(opts.ref);
    const target = formatReference({ name: want.name, tag: want.tag });
    let pick: Descriptor | undefined;
    if (entries.length === 1) pick = entries[0];
    else {
      pick = entries.find((d) => d.annotations?.[ANNOTATIONS.refName] === want.tag || d.annotations?.[ANNOTATIONS.refName] === target ||
        d.annotations?.[ANNOTATIONS.containerdName] === target);
    }
    if (!pick) {
      const names = entries.map((d) => d.annotations?.[ANNOTATIONS.refName] ?? d.digest).join(', ');
      throw new PierError(`${label} holds ${entries.length} images (${names}); none is tagged ${JSON.stringify(want.tag)}`);
    }
    return [{ ref: target, descriptor: pick }];
  }
  return entries.map((d, i) => {
    const ref = refForLayoutEntry(d, fallbackName);
    if (!ref) throw new PierError(`${label}: image ${i} (${d.digest}) has no name; give one with --ref`);
    return { ref, descriptor: d };
  });
}

async function withSource<T>(path: string, store: ContentStore, lease: Lease, fn: (src: Source) => Promise<T>): Promise<T> {
  if (statSync(path).isDirectory()) return fn(new DirSource(path, store, lease));
  const tar = await ingestTar(path, store, lease);
  return fn(new TarSource(path, tar, store, lease));
}

/** Read `path` into the store and tag what it holds; all tags land together, or none. */
export async function importPath(store: ContentStore, refs: RefIndex, path: string, opts: ImportOptions = {}): Promise<ImportedImage[]> {
  const format = opts.format ?? await detectFormat(path);
  if (!IMPORT_FORMATS.includes(format)) throw new PierError(`unknown import format ${JSON.stringify(format)} (use ${IMPORT_FORMATS.join(', ')})`);
  if (!existsSync(path)) throw new PierError(`${path}: no such file or directory`);
  const isDir = statSync(path).isDirectory();
  if (format === 'oci-dir' && !isDir) throw new PierError(`${path} is not a directory (use --format oci-archive for a tar)`);
  if (format === 'oci-archive' && isDir) throw new PierError(`${path} is a directory (use --format oci-dir)`);
  if (opts.ref !== undefined) parseReference(opts.ref);
  store.init();
  const lease = store.newLease();
  try {
    let images: ImportedImage[];
    const fallbackName = nameFromPath(path);
    if (format === 'oci-dir' || format === 'oci-archive') {
      images = await withSource(path, store, lease, async (src) => chooseLayoutEntries(await importLayout(src, store), opts, path, fallbackName));
    } else if (format === 'docker-archive') {
      images = await withSource(path, store, lease, async (src) => {
        // docker ≥25 writes an OCI layout alongside manifest.json: prefer it, its digests are the originals.
        if (src.has('oci-layout') && src.has('index.json')) return chooseLayoutEntries(await importLayout(src, store), opts, path, fallbackName);
        const found = await importDockerSave(src, store, lease);
        if (opts.ref !== undefined) {
          if (found.length !== 1) throw new PierError(`${path} holds ${found.length} images: --ref names only one`);
          return [{ ref: normalizeTagged(opts.ref), descriptor: found[0].descriptor }];
        }
        const out: ImportedImage[] = [];
        found.forEach((f, i) => {
          if (f.tags.length === 0) throw new PierError(`${path}: image ${i} has no RepoTags; give it a name with --ref`);
          for (const t of f.tags) out.push({ ref: normalizeTagged(t), descriptor: f.descriptor });
        });
        return out;
      });
    } else {
      const layer: NewLayer = isDir
        ? await layerFromDirectory(path, store, lease, { sourceDateEpoch: opts.sourceDateEpoch })
        : await layerFromTar(path, store, lease);
      const created = new Date(opts.sourceDateEpoch !== undefined ? opts.sourceDateEpoch * 1000 : Date.now()).toISOString();
      const img = await writeImage(store, {
        layers: [layer],
        config: opts.config ?? { Env: [DEFAULT_PATH] },
        created,
        history: [{ created, created_by: `pier image import ${basename(path)}` }],
      }, lease);
      images = [{ ref: normalizeTagged(opts.ref ?? fallbackName), descriptor: img.descriptor }];
    }
    // Every layer is read once now (headers only) and refused if an entry escapes, as containerd's
    // unpack does at import: a hostile image never gets a name here.
    for (const im of images) await checkImageLayers(store, im.descriptor);
    await refs.setMany(images, async () => {
      for (const im of images) await reachable(store, im.descriptor, { requirePresent: true });
    });
    return images;
  } finally {
    lease.release();
  }
}

/** checkLayer on each layer of each manifest under `root`, and its diffID against the config's. */
async function checkImageLayers(store: ContentStore, root: Descriptor): Promise<void> {
  const checked = new Map<string, string>();
  for (const r of await reachable(store, root, { requirePresent: true })) {
    if (r.role !== 'manifest') continue;
    const m = parseManifest(await store.readBytes(r.descriptor.digest), r.descriptor.mediaType, `manifest ${r.descriptor.digest}`);
    const config = parseConfig(await store.readBytes(m.config.digest), m, `config ${m.config.digest}`);
    for (const [i, l] of m.layers.entries()) {
      if (!store.info(l.digest)) continue; // a foreign layer, fetched from its urls at unpack
      let diffId = checked.get(l.digest);
      if (diffId === undefined) {
        diffId = (await checkLayer(store.readStream(l.digest), `layer ${l.digest}`)).diffId;
        checked.set(l.digest, diffId);
      }
      const want = config.rootfs.diff_ids[i];
      if (want !== diffId) throw new PierError(`layer ${l.digest} does not match diff_id ${want ?? '(none)'} of its config (got ${diffId})`);
    }
  }
}

function normalizeTagged(ref: string): string {
  const r = parseReference(ref);
  return formatReference({ name: r.name, tag: r.tag ?? 'latest' });
}

export async function exportImages(store: ContentStore, items: ExportItem[], dest: string, format: ExportFormat): Promise<void> {
  if (items.length === 0) throw new PierError('nothing to export: name at least one image');
  if (format === 'oci-dir') return exportLayoutDir(store, items, dest);
  if (format === 'oci-archive') return exportLayoutArchive(store, items, dest);
  throw new PierError(`unknown export format ${JSON.stringify(format)} (use oci-dir or oci-archive)`);
}

export { writeImage, goArch, hostPlatform, DEFAULT_PATH, type NewLayer, type NewImage } from './compose.ts';
export { layerFromTar, layerFromDirectory } from './rootfs.ts';
export { layerDiffId } from './docker.ts';
export type { ExportItem } from './layout.ts';
