/**
 * Layer 2's public API: `ImageService` over the image store at `$PIER_ROOT/images` (an OCI image
 * layout). Other layers import from here, not from the folders.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PierError, messageOf } from '../common/errors.ts';
import { MNT_DETACH, MS_NODEV, MS_NOSUID, fsx } from '../common/fsx.ts';
import { ContentStore } from './store/content.ts';
import { RefIndex, type RefEntry } from './store/refs.ts';
import { collectGarbage, type GcResult } from './store/gc.ts';
import { reachable } from './store/walk.ts';
import { INDEX_MEDIA_TYPES, MEDIA_TYPES, type Descriptor, type ImageConfig, type ImageManifest, type Platform } from './oci/types.ts';
import { manifestKind, parseConfig, parseIndex, parseManifest } from './oci/validate.ts';
import { formatReference, parseReference } from './oci/reference.ts';
import { exportImages, importPath, goArch, type ExportFormat, type ImportOptions, type ImportedImage } from './transfer/index.ts';
import { bootstrapBusybox, type BusyboxOptions } from './bootstrap/busybox.ts';
import { bootstrapPause, PAUSE_REF } from './bootstrap/pause.ts';
import { bootstrapDebian, type DebianOptions } from './bootstrap/debian.ts';
import { applyLayer } from './layer/index.ts';
import { Snapshotter, chainIds, mountAll, tightenSnapshotDirs, type PreparedMounts } from './snapshot/index.ts';
import { tightenDir } from '../common/statedir.ts';
import { imageSpec, writeBundle, type ImageSpecOptions } from './bundle.ts';

export * from './oci/types.ts';
export { parseReference, formatReference, normalizeReference, isValidTag, type Reference } from './oci/reference.ts';
export { parseManifest, parseIndex, parseConfig, validateDescriptor, manifestKind } from './oci/validate.ts';
export { parsePlatform, formatPlatform, platformMatches, pickPlatform, platformsOf, platformOf } from './oci/platform.ts';
import { formatPlatform, pickPlatform, platformsOf, platformOf } from './oci/platform.ts';
export { ContentStore, Lease, type BlobInfo, type WriteResult, type Expected, type Ingest } from './store/content.ts';
export { RefIndex, type RefEntry } from './store/refs.ts';
export type { GcResult } from './store/gc.ts';
export type { ImportOptions, ImportedImage, ImportFormat, ExportFormat } from './transfer/index.ts';
export { IMPORT_FORMATS } from './transfer/index.ts';
export { applyLayer, applyLayerAt, archivePath, type ArchiveOptions } from './layer/index.ts';
export { imageSpec, resolveUser, writeBundle, type ImageSpecOptions } from './bundle.ts';
export type { Compression } from './layer/index.ts';
export { mountAll, type SnapshotMount, type PreparedMounts } from './snapshot/index.ts';
export type { BusyboxOptions } from './bootstrap/busybox.ts';
export { PAUSE_REF } from './bootstrap/pause.ts';
export type { DebianOptions } from './bootstrap/debian.ts';

export const DEFAULT_PIER_ROOT = '/var/lib/pier';

/** pier's state root: $PIER_ROOT, else /var/lib/pier. */
export function pierRoot(): string {
  return process.env.PIER_ROOT || DEFAULT_PIER_ROOT;
}

export interface ResolvedImage {
  /** the ref as normalised (`busybox:latest`, `name@sha256:…`) */
  ref: string;
  /** what index.json names: a manifest, or an index the manifest was chosen from */
  target: Descriptor;
  manifestDigest: string;
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
  configDigest: string;
  config: ImageConfig;
}

export interface ImageSummary {
  ref: string;
  repository: string;
  tag: string;
  /** the digest index.json names (also the IMAGE ID, abbreviated) */
  digest: string;
  mediaType: string;
  created?: string;
  /** bytes of every blob the image uses (compressed layers, config, manifests) */
  size?: number;
  platform?: string;
  /** set when the image cannot be read */
  error?: string;
}

export interface HistoryRow {
  created?: string;
  createdBy?: string;
  comment?: string;
  emptyLayer: boolean;
  /** the layer this step made, with its (compressed) size */
  layer?: Descriptor;
}

export interface InspectResult {
  ref: string;
  tags: string[];
  digest: string;
  mediaType: string;
  manifestDigest: string;
  configDigest: string;
  size: number;
  platform: Platform;
  manifest: ImageManifest;
  config: ImageConfig;
}

export type BootstrapKind = 'busybox' | 'debian' | 'pause';
export type BootstrapOptions = BusyboxOptions & DebianOptions & { ref?: string };

export class ImageService {
  readonly root: string;
  readonly content: ContentStore;
  readonly refs: RefIndex;
  readonly platform: Platform;

  constructor(opts: { root?: string; platform?: Platform } = {}) {
    this.root = opts.root ?? pierRoot();
    const images = join(this.root, 'images');
    // An install made by an older pier has these 0755: take them down to 0700 (what exists; dirs
    // are made 0700 when first needed). $PIER_ROOT itself too, as docker does to its data root.
    for (const d of [this.root, join(this.root, 'build-runtime'), join(this.root, 'registry')]) tightenDir(d);
    tightenSnapshotDirs(images);
    this.content = new ContentStore(images);
    this.refs = new RefIndex(images);
    this.platform = opts.platform ?? { os: 'linux', architecture: goArch() };
  }

  /**
   * Unpack an image into a runtime bundle, as `umoci unpack` does: every layer applied in order into
   * `<dir>/rootfs` (each verified against its diffID) and `<dir>/config.json` from the image config.
   * The dir must be absent or empty; on failure nothing of it is left.
   */
  async unpack(ref: string, dir: string, opts: Omit<ImageSpecOptions, 'rootfs'> = {}): Promise<{ ref: string; bundle: string }> {
    const img = await this.resolve(ref);
    const bundle = resolvePath(dir);
    const existed = existsSync(bundle);
    if (existed && readdirSync(bundle).length) throw new PierError(`cannot unpack into ${bundle}: it exists and is not empty`);
    const rootfs = join(bundle, 'rootfs');
    try {
      mkdirSync(rootfs, { recursive: true, mode: 0o755 });
      for (const [i, layer] of img.manifest.layers.entries()) {
        await applyLayer(this.content.readStream(layer.digest), rootfs, { format: 'apply', diffId: img.config.rootfs.diff_ids[i] });
      }
      writeBundle(bundle, imageSpec(img.config, { ...opts, rootfs }));
    } catch (err) {
      if (existed) for (const e of readdirSync(bundle)) rmSync(join(bundle, e), { recursive: true, force: true });
      else rmSync(bundle, { recursive: true, force: true });
      throw err;
    }
    return { ref: img.ref, bundle };
  }

  /**
   * A writable root filesystem of the image for a container: its layers unpacked once (shared, by
   * chain ID) and an overlay (or copy) prepared under `key`. `removeRootfs(key)` undoes it.
   * The host's view is nosuid,nodev unless `nosuid: false` (see Snapshotter.prepare).
   */
  async prepareRootfs(input: string | ResolvedImage, key: string, opts: { nosuid?: boolean } = {}): Promise<{ image: ResolvedImage; rootfs: string; upper?: string }> {
    const image = typeof input === 'string' ? await this.resolve(input) : input;
    const chain = await this.unpackChain(image);
    const p = await this.snapshotter().prepare(key, chain, opts);
    return { image, ...p };
  }

  /**
   * As prepareRootfs, but nothing is mounted: the answer holds the mounts (data) that give the
   * container its tree when made onto `rootfs`, for whoever runs the container to make in the
   * container's own mount namespace (Snapshotter.prepareMounts). removeRootfs undoes it too.
   */
  async prepareRootfsMounts(input: string | ResolvedImage, key: string): Promise<{ image: ResolvedImage } & PreparedMounts> {
    const image = typeof input === 'string' ? await this.resolve(input) : input;
    const chain = await this.unpackChain(image);
    const p = await this.snapshotter().prepareMounts(key, chain);
    return { image, ...p };
  }

  /**
   * A short-lived host view of a rootfs prepared as mounts (nosuid,nodev): for the engine's work on
   * a container that is not running — the copy-up into new volumes at create, `cp` of a stopped
   * container, resolving a named user at start. A running container's tree is reached through its
   * own mount namespace instead (overlayfs refuses a second mount of a busy upper dir). release()
   * detaches the mount and removes its mount point; call it in a finally.
   */
  mountView(key: string): { path: string; release(): void } {
    const p = this.rootfsMounts(key);
    if (!p) throw new PierError(`rootfs ${key} was not prepared as mounts`);
    const path = join(dirname(p.rootfs), `view-${randomBytes(6).toString('hex')}`);
    mkdirSync(path, { mode: 0o700 });
    try {
      mountAll(p.mounts, path, MS_NOSUID | MS_NODEV);
    } catch (err) {
      try { fsx().umount2(path, MNT_DETACH); } catch { /* nothing was mounted */ }
      rmdirSync(path);
      throw new PierError(`mounting a view of ${key}: ${messageOf(err)}`, { cause: err });
    }
    let done = false;
    return {
      path,
      release: () => {
        if (done) return;
        done = true;
        for (;;) {
          try { fsx().umount2(path, MNT_DETACH); } catch { break; }
        }
        try { rmdirSync(path); } catch { /* a mount we could not take down keeps its point */ }
      },
    };
  }

  /** The mounts of a rootfs prepared by prepareRootfsMounts (undefined: not prepared that way). */
  rootfsMounts(key: string): PreparedMounts | undefined {
    return this.snapshotter().mountsOf(key);
  }

  private async unpackChain(image: ResolvedImage): Promise<string | undefined> {
    const snap = this.snapshotter();
    const diffIds = image.config.rootfs.diff_ids;
    return image.manifest.layers.length === 0 ? undefined : snap.unpack(image.manifest.layers.map((l, i) => ({
      diffId: diffIds[i], mediaType: l.mediaType, open: () => this.content.readStream(l.digest),
    })));
  }

  /** Unmount and delete a rootfs made by prepareRootfs (no error when it is already gone). */
  async removeRootfs(key: string): Promise<void> {
    await this.snapshotter().remove(key);
  }

  /** Bytes a prepared rootfs has written (its overlay upper dir), for `system df` and `ps --size`. */
  rootfsUsage(): { key: string; size: number }[] {
    return this.snapshotter().usage().mounts;
  }

  private snapshotter(): Snapshotter {
    return (this.snap ??= new Snapshotter(join(this.root, 'images')));
  }
  private snap: Snapshotter | undefined;

  private notFound(ref: string): PierError {
    return new PierError(`image ${JSON.stringify(ref)} not found`);
  }

  /** The index.json entry (or entries, for an ID) a user's ref names. */
  private lookup(input: string): { ref: string; target: Descriptor; entries: RefEntry[] } {
    const entries = this.refs.list();
    let r;
    try {
      r = parseReference(input);
    } catch (err) {
      const byId = this.byId(input, entries);
      if (byId) return byId;
      throw err;
    }
    if (r.digest !== undefined) {
      const ref = formatReference({ name: r.name, digest: r.digest });
      const hit = entries.find((e) => e.descriptor.digest === r.digest && parseReference(e.ref).name === r.name);
      if (hit) return { ref, target: hit.descriptor, entries: [hit] };
      throw this.notFound(ref);
    }
    const ref = formatReference(r);
    const hit = entries.find((e) => e.ref === ref);
    if (hit) return { ref, target: hit.descriptor, entries: [hit] };
    const byId = this.byId(input, entries);
    if (byId) return byId;
    throw this.notFound(ref);
  }

  /** An image ID: a unique prefix (4+ hex digits) of a digest index.json names, with or without `sha256:`. */
  private byId(input: string, entries: RefEntry[]): { ref: string; target: Descriptor; entries: RefEntry[] } | undefined {
    const m = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(input);
    if (!m) return undefined;
    const hits = entries.filter((e) => e.descriptor.digest.startsWith(`sha256:${m[1]}`));
    const digests = new Set(hits.map((h) => h.descriptor.digest));
    if (digests.size > 1) throw new PierError(`image ID ${JSON.stringify(input)} is ambiguous: it starts ${digests.size} images' digests`);
    if (hits.length === 0) return undefined;
    return { ref: hits[0].descriptor.digest, target: hits[0].descriptor, entries: hits };
  }

  /** The local refs (`name:tag`) that `input` names, without reading the image; a PierError if none. */
  refsFor(input: string): string[] {
    const { entries } = this.lookup(input);
    const r = (() => { try { return parseReference(input); } catch { return undefined; } })();
    if (r?.digest !== undefined) {
      return this.refs.list().filter((e) => e.descriptor.digest === r.digest && parseReference(e.ref).name === r.name).map((e) => e.ref);
    }
    return entries.map((e) => e.ref);
  }

  /** The manifest for this platform under `target` (itself, or the matching child of an index). */
  private async pickManifest(target: Descriptor, ref: string): Promise<{ descriptor: Descriptor; manifest: ImageManifest }> {
    let d = target;
    for (let depth = 0; depth < 8; depth++) {
      const data = await this.content.readBytes(d.digest);
      const kind = manifestKind(data, d.mediaType, `manifest ${d.digest}`);
      if (kind === 'manifest') return { descriptor: d, manifest: parseManifest(data, d.mediaType, `manifest ${d.digest}`) };
      const idx = parseIndex(data, d.mediaType, `index ${d.digest}`);
      const want = this.platform;
      const child = pickPlatform(idx.manifests, want);
      if (!child) throw new PierError(`image ${JSON.stringify(ref)} has no manifest for ${formatPlatform(want)} (it has ${platformsOf(idx.manifests)})`);
      if (!this.content.has(child.digest)) {
        throw new PierError(`image ${JSON.stringify(ref)}: the ${formatPlatform(want)} manifest ${child.digest} is not in the store`);
      }
      d = child;
    }
    throw new PierError(`image ${JSON.stringify(ref)}: image index nesting deeper than 8`);
  }

  async resolve(input: string): Promise<ResolvedImage> {
    const { ref, target } = this.lookup(input);
    const { descriptor, manifest } = await this.pickManifest(target, ref);
    const config = parseConfig(await this.content.readBytes(manifest.config.digest), manifest, `config ${manifest.config.digest}`);
    return { ref, target, manifestDigest: descriptor.digest, manifestDescriptor: descriptor, manifest, configDigest: manifest.config.digest, config };
  }

  private async sizeOf(target: Descriptor, manifest: ImageManifest, manifestDigest: string): Promise<number> {
    let size = manifest.config.size + manifest.layers.reduce((a, l) => a + l.size, 0);
    size += target.size;
    if (manifestDigest !== target.digest) size += (await this.content.info(manifestDigest))?.size ?? 0;
    return size;
  }

  async list(): Promise<ImageSummary[]> {
    const out: ImageSummary[] = [];
    for (const e of this.refs.list()) {
      const r = parseReference(e.ref);
      const base = { ref: e.ref, repository: r.name, tag: r.tag ?? '', digest: e.descriptor.digest, mediaType: e.descriptor.mediaType };
      try {
        const img = await this.resolve(e.ref);
        out.push({
          ...base,
          created: img.config.created,
          size: await this.sizeOf(img.target, img.manifest, img.manifestDigest),
          platform: formatPlatform(img.config),
        });
      } catch (err) {
        out.push({ ...base, error: (err as Error).message });
      }
    }
    return out;
  }

  async inspect(input: string): Promise<InspectResult> {
    const img = await this.resolve(input);
    const tags = this.refs.list().filter((e) => e.descriptor.digest === img.target.digest).map((e) => e.ref);
    return {
      ref: img.ref,
      tags,
      digest: img.target.digest,
      mediaType: img.target.mediaType,
      manifestDigest: img.manifestDigest,
      configDigest: img.configDigest,
      size: await this.sizeOf(img.target, img.manifest, img.manifestDigest),
      platform: platformOf(img.config),
      manifest: img.manifest,
      config: img.config,
    };
  }

  /** The config's history, each step with the layer it made (oldest first). */
  async history(input: string): Promise<HistoryRow[]> {
    const img = await this.resolve(input);
    const layers = img.manifest.layers;
    const hist = img.config.history ?? [];
    const rows: HistoryRow[] = [];
    let li = 0;
    for (const h of hist) {
      const empty = h.empty_layer === true;
      rows.push({ created: h.created, createdBy: h.created_by, comment: h.comment, emptyLayer: empty, layer: empty ? undefined : layers[li] });
      if (!empty) li++;
    }
    // Layers the history does not describe (images built without history) still get a row each.
    for (; li < layers.length; li++) rows.push({ emptyLayer: false, layer: layers[li] });
    return rows;
  }

  /** Give the image `src` names the tag `dst` too. */
  async tag(src: string, dst: string): Promise<string> {
    const { target } = this.lookup(src);
    const d = parseReference(dst);
    if (d.digest !== undefined) throw new PierError(`cannot tag ${JSON.stringify(dst)}: a tag cannot carry a digest`);
    const name = formatReference(d);
    await this.refs.set(name, target, async () => { await reachable(this.content, target, { requirePresent: true }); });
    return name;
  }

  /**
   * A multi-platform image of local images (`pier manifest create/add`): an OCI index naming each
   * image's manifest with the platform its config gives, tagged `name`. With `amend`, an index
   * `name` already names is extended; an image of a platform the index already has replaces that
   * entry. An image that is itself an index contributes this host's manifest.
   */
  async createIndex(name: string, images: string[], opts: { amend?: boolean } = {}): Promise<{ ref: string; descriptor: Descriptor; platforms: string[] }> {
    const r = parseReference(name);
    if (r.digest !== undefined) throw new PierError(`cannot name an index ${JSON.stringify(name)}: a name with a digest cannot be tagged`);
    const ref = formatReference(r);
    const existing = this.refs.get(ref);
    if (existing && !opts.amend) throw new PierError(`image ${JSON.stringify(ref)} already exists (add to it with pier manifest add, or create --amend)`);
    if (existing && !ImageService.isIndex(existing)) throw new PierError(`image ${JSON.stringify(ref)} is not a manifest list (it names a single-platform image)`);
    let entries: Descriptor[] = existing ? parseIndex(await this.content.readBytes(existing.digest), existing.mediaType, `index ${existing.digest}`).manifests : [];
    for (const input of images) {
      const img = await this.resolve(input);
      const platform = platformOf(img.config);
      const m = img.manifestDescriptor;
      const entry: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.size, platform };
      entries = [...entries.filter((e) => formatPlatform(e.platform) !== formatPlatform(platform)), entry];
    }
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: entries }));
    this.content.init();
    const lease = this.content.newLease();
    try {
      const w = await this.content.write(bytes, {}, lease);
      const descriptor: Descriptor = { mediaType: MEDIA_TYPES.ociIndex, digest: w.digest, size: w.size };
      await this.refs.set(ref, descriptor, async () => { await reachable(this.content, descriptor, { requirePresent: true }); });
      return { ref, descriptor, platforms: entries.map((e) => formatPlatform(e.platform)) };
    } finally {
      lease.release();
    }
  }

  /**
   * Untag: a `name:tag` removes that tag; a `name@digest` every tag of that name on that digest; an
   * image ID every tag on it. Blobs no longer used are then collected.
   */
  async remove(input: string | string[]): Promise<{ untagged: string[]; gc: GcResult & { snapshots: string[] } }> {
    const inputs = Array.isArray(input) ? input : [input];
    // Resolve every name first: one unknown name removes nothing.
    const names = [...new Set(inputs.flatMap((i) => this.refsFor(i)))];
    const removed = await this.refs.remove(names);
    const gc = await this.gc();
    return { untagged: removed.map((e) => e.ref), gc };
  }

  async importPath(path: string, opts: ImportOptions = {}): Promise<ImportedImage[]> {
    return importPath(this.content, this.refs, path, opts);
  }

  async export(refs: string[], dest: string, opts: { format: ExportFormat }): Promise<void> {
    const items = refs.map((input) => {
      const { ref, target, entries } = this.lookup(input);
      // An ID or digest exports under the tag it has here.
      return { ref: ref.includes('@') || !ref.includes(':') || /^sha256:/.test(ref) ? entries[0].ref : ref, descriptor: target };
    });
    await exportImages(this.content, items, dest, opts.format);
  }

  async bootstrap(kind: BootstrapKind, opts: BootstrapOptions = {}): Promise<ImportedImage> {
    this.content.init();
    const lease = this.content.newLease();
    try {
      let descriptor: Descriptor;
      let ref: string;
      if (kind === 'busybox') {
        descriptor = await bootstrapBusybox(this.content, lease, opts);
        ref = opts.ref ?? 'busybox:latest';
      } else if (kind === 'pause') {
        descriptor = await bootstrapPause(this.content, lease, opts);
        ref = opts.ref ?? PAUSE_REF;
      } else if (kind === 'debian') {
        descriptor = await bootstrapDebian(this.content, lease, opts);
        ref = opts.ref ?? `debian:${opts.suite ?? 'bookworm'}`;
      } else {
        throw new PierError(`unknown bootstrap image ${JSON.stringify(kind)} (busybox, debian or pause)`);
      }
      const name = formatReference(parseReference(ref));
      await this.refs.set(name, descriptor, async () => { await reachable(this.content, descriptor, { requirePresent: true }); });
      return { ref: name, descriptor };
    } finally {
      lease.release();
    }
  }

  /**
   * Sweep blobs no ref reaches, then (unless dry-run) unpacked layer snapshots that no tagged image
   * and no prepared rootfs uses; a build re-unpacks what it needs.
   */
  async gc(opts: { dryRun?: boolean } = {}): Promise<GcResult & { snapshots: string[] }> {
    this.content.init();
    const result = await collectGarbage(this.content, this.refs, opts);
    if (opts.dryRun || !existsSync(join(this.root, 'images', 'snapshots'))) return { ...result, snapshots: [] };
    const keep: string[] = [];
    for (const e of this.refs.list()) {
      try {
        const ids = chainIds((await this.resolve(e.ref)).config.rootfs.diff_ids);
        if (ids.length) keep.push(ids[ids.length - 1]);
      } catch { /* an unresolvable ref keeps nothing */ }
    }
    return { ...result, snapshots: new Snapshotter(join(this.root, 'images')).prune(keep) };
  }

  /** Is `d` an index (as opposed to a single-platform manifest)? */
  static isIndex(d: Descriptor): boolean {
    return INDEX_MEDIA_TYPES.includes(d.mediaType);
  }
}


export { build, Builder, parseContainerfile, type BuildOptions, type BuildResult, type BuildNetworkMode, type BuildNetworkProvider, type BuildSandbox } from './build/index.ts';
