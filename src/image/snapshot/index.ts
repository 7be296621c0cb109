/**
 * Snapshotter: layers unpacked once into `snapshots/<chain-hex>/`, shared by every image that has the
 * same layer stack, and rootfs preparation in `mounts/<key>/`.
 *
 * overlay mode: `snapshots/<hex>/fs` holds one layer in overlay format; prepare mounts the chain's
 * dirs as lowerdirs with a fresh upper/work. copy mode (no overlayfs, or PIER_SNAPSHOTTER=copy):
 * `snapshots/<hex>/full` holds the whole stack up to that layer (parent copied, layer applied in place)
 * and prepare copies it. A snapshot appears by rename of a finished temp dir, so a crash or a
 * concurrent unpacker never exposes half a layer.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { writeFileAtomic } from '../../common/atomic.ts';
import { PierError, errnoOf, messageOf } from '../../common/errors.ts';
import { MNT_DETACH, MS_RDONLY, MS_BIND, MS_NODEV, MS_NOSUID, MS_REMOUNT, fsx } from '../../common/fsx.ts';
import { privateDir, tightenDir } from '../../common/statedir.ts';
import { applyLayer } from '../layer/apply.ts';

export interface LayerSource {
  diffId: string;
  mediaType: string;
  open(): Readable;
}

export type SnapshotMode = 'overlay' | 'copy';

export interface Prepared {
  rootfs: string;
  /** The overlay upper dir (what the container changed); absent for copies and read-only mounts. */
  upper?: string;
}

export interface SnapshotMeta {
  chainId: string;
  diffId: string;
  parent?: string;
  mode: SnapshotMode;
  entries: number;
  created: string;
}

export interface MountMeta {
  key: string;
  chainId?: string;
  mode: SnapshotMode;
  readonly: boolean;
  /** What prepareMounts answered (absent in a record of an older pier, which mounted on the host). */
  mounts?: SnapshotMount[];
}

/**
 * One mount of a rootfs as data, containerd's mount.Mount shape (and an OCI config.json mount's
 * without the destination: every one goes onto the rootfs dir, in order). Options are mount(8)'s:
 * flags (`ro`, `bind`, `nosuid`) and the filesystem's own (`lowerdir=…`).
 */
export interface SnapshotMount {
  type: 'overlay' | 'bind';
  source: string;
  options: string[];
}

export interface PreparedMounts {
  /** The dir the mounts go onto (empty until mounted; in copy mode, the tree itself). */
  rootfs: string;
  mounts: SnapshotMount[];
  /** The overlay upper dir (what the container changes); absent for copies and read-only ones. */
  upper?: string;
}

export interface Usage {
  snapshots: { chainId: string; size: number; inodes: number }[];
  mounts: { key: string; chainId?: string; size: number }[];
  total: number;
}

/** Overlay mount data must fit one page; beyond this, lowerdirs go through short links. */
const MOUNT_DATA_MAX = 4000;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** chainID(1) = diffID(1); chainID(n) = sha256(chainID(n-1) + " " + diffID(n)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    if (!DIGEST.test(d)) throw new PierError(`invalid layer diffID "${d}"`);
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}

function hexOf(digest: string): string {
  if (!DIGEST.test(digest)) throw new PierError(`invalid chain ID "${digest}"`);
  return digest.slice('sha256:'.length);
}

let probed: SnapshotMode | undefined;

export class Snapshotter {
  readonly root: string;
  readonly snapshots: string;
  readonly mounts: string;
  private modeCache: SnapshotMode | undefined;

  /** `root` is the images dir: snapshots live in `<root>/snapshots`, prepared rootfs in `<root>/mounts`. */
  constructor(root: string, opts: { mode?: SnapshotMode } = {}) {
    this.root = root;
    this.snapshots = join(root, 'snapshots');
    this.mounts = join(root, 'mounts');
    this.modeCache = opts.mode;
    tightenSnapshotDirs(root); // first: it looks at what was loose before this pier made anything
    privateDir(this.snapshots);
    privateDir(this.mounts);
  }

  /** overlay when this kernel mounts overlayfs over this filesystem (probed once), else copy. */
  get mode(): SnapshotMode {
    if (this.modeCache) return this.modeCache;
    const env = process.env.PIER_SNAPSHOTTER;
    if (env === 'copy' || env === 'overlay') return (this.modeCache = env);
    if (env) throw new PierError(`PIER_SNAPSHOTTER must be "overlay" or "copy", not "${env}"`);
    if (!probed) probed = this.probe();
    return (this.modeCache = probed);
  }

  private probe(): SnapshotMode {
    if (process.getuid?.() !== 0) return 'copy';
    const dir = mkdtempSync(join(this.mounts, '.probe-'));
    try {
      for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, d));
      const f = fsx();
      f.mknod(join(dir, 'l', 'wh'), 0o020000, 0);
      f.mount('overlay', join(dir, 'm'), 'overlay', 0, `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`);
      f.umount2(join(dir, 'm'), MNT_DETACH);
      return 'overlay';
    } catch {
      return 'copy';
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private snapDir(chainId: string): string {
    return join(this.snapshots, hexOf(chainId));
  }

  private layerDir(chainId: string): string {
    return join(this.snapDir(chainId), this.mode === 'overlay' ? 'fs' : 'full');
  }

  has(chainId: string): boolean {
    return existsSync(this.layerDir(chainId));
  }

  meta(chainId: string): SnapshotMeta | undefined {
    try {
      return JSON.parse(readFileSync(join(this.snapDir(chainId), `${this.mode}.json`), 'utf8')) as SnapshotMeta;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Unpack the layers that are not unpacked yet; returns the top chain ID. */
  async unpack(layers: LayerSource[]): Promise<string> {
    if (layers.length === 0) throw new PierError('an image needs at least one layer to unpack');
    const ids = chainIds(layers.map((l) => l.diffId));
    for (let i = 0; i < layers.length; i++) {
      if (this.has(ids[i])) continue;
      await this.unpackOne(layers[i], ids[i], i > 0 ? ids[i - 1] : undefined);
    }
    return ids[ids.length - 1];
  }

  private async unpackOne(layer: LayerSource, chainId: string, parent: string | undefined): Promise<void> {
    const mode = this.mode;
    const tmp = mkdtempSync(join(this.snapshots, '.tmp-'));
    try {
      const fs = join(tmp, mode === 'overlay' ? 'fs' : 'full');
      if (mode === 'copy' && parent) copyTree(this.layerDir(parent), fs);
      else mkdirSync(fs, { mode: 0o755 });
      let result;
      try {
        result = await applyLayer(layer.open(), fs, { format: mode === 'overlay' ? 'overlay' : 'apply', diffId: layer.diffId });
      } catch (err) {
        throw err instanceof PierError ? new PierError(`layer ${layer.diffId}: ${err.message}`, { cause: err }) : err;
      }
      const meta: SnapshotMeta = { chainId, diffId: layer.diffId, parent, mode, entries: result.entries, created: new Date().toISOString() };
      writeFileAtomic(join(tmp, `${mode}.json`), JSON.stringify(meta));
      const dest = this.snapDir(chainId);
      if (existsSync(dest)) {
        // Another unpacker finished this chain (perhaps in the other mode): move just our half in.
        if (!existsSync(join(dest, mode === 'overlay' ? 'fs' : 'full'))) {
          renameIfAbsent(fs, join(dest, mode === 'overlay' ? 'fs' : 'full'));
          renameIfAbsent(join(tmp, `${mode}.json`), join(dest, `${mode}.json`));
        }
      } else {
        renameIfAbsent(tmp, dest);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** The chain from the bottom layer to `chainId`. */
  chain(chainId: string): string[] {
    const out: string[] = [];
    for (let c: string | undefined = chainId; c !== undefined;) {
      if (!this.has(c)) throw new PierError(`snapshot ${c} is not unpacked`);
      out.unshift(c);
      c = this.meta(c)?.parent;
      if (out.length > 1000) throw new PierError(`snapshot chain of ${chainId} is cyclic`);
    }
    return out;
  }

  /**
   * A rootfs for container `key` on top of `chainId` (an empty one when undefined).
   *
   * The mount the host sees is nosuid,nodev: set-id programs and device nodes a container or a layer
   * put there do nothing for a host user who reaches them. pier's runtime clears both on its own
   * bind of the rootfs in the container's mount namespace (the `io.pier.rootfs.suid-dev`
   * annotation, src/runtime/plan/create.ts), so the container still has them, as under docker.
   * `nosuid: false` is for a runtime that copies the host mount's flags into the container (runc
   * binds the rootfs as it finds it): set-id would not work there, so the mount is made without
   * them and only the root-only parents (mounts/ and mounts/<key>/ are 0700) keep host users out —
   * what moby does for its overlay2 dirs.
   */
  async prepare(key: string, chainId: string | undefined, opts: { readonly?: boolean; nosuid?: boolean } = {}): Promise<Prepared> {
    const p = await this.prepareMounts(key, chainId, opts);
    try {
      mountAll(p.mounts, p.rootfs, opts.nosuid === false ? 0 : MS_NOSUID | MS_NODEV);
    } catch (err) {
      try { await this.remove(key); } catch { /* report the first failure */ }
      throw err instanceof PierError ? err : new PierError(`cannot mount snapshot "${key}": ${messageOf(err)}`, { cause: err });
    }
    return p.upper ? { rootfs: p.rootfs, upper: p.upper } : { rootfs: p.rootfs };
  }

  /**
   * Prepare `key` as prepare() does, but mount nothing: the answer is the mounts that, made in
   * order onto `rootfs` (an empty dir), give the container its tree — containerd's
   * Snapshotter.Prepare → []mount.Mount. Whoever runs the container makes them, in the container's
   * own mount namespace (pier's runtime: the `io.pier.rootfs.mounts` annotation), so the host never
   * holds the mount. Copy mode has nothing to mount (rootfs is the tree itself) unless read-only.
   */
  async prepareMounts(key: string, chainId: string | undefined, opts: { readonly?: boolean } = {}): Promise<PreparedMounts> {
    if (!KEY.test(key)) throw new PierError(`invalid snapshot key "${key}"`);
    const dir = join(this.mounts, key);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') throw new PierError(`snapshot key "${key}" is already prepared`);
      throw err;
    }
    const mode = this.mode;
    const readonly = opts.readonly ?? false;
    const rootfs = join(dir, 'rootfs');
    try {
      let mounts: SnapshotMount[];
      let upper: string | undefined;
      if (mode === 'copy') {
        if (chainId) copyTree(this.layerDir(chainId), rootfs);
        else mkdirSync(rootfs, { mode: 0o755 });
        mounts = readonly ? [{ type: 'bind', source: rootfs, options: ['bind', 'ro'] }] : [];
      } else {
        mkdirSync(rootfs);
        const lowers = chainId ? this.chain(chainId).reverse().map((c) => this.layerDir(c)) : [];
        if (lowers.length === 0) {
          mkdirSync(join(dir, 'empty'));
          lowers.push(join(dir, 'empty'));
        }
        if (readonly && lowers.length === 1) {
          // overlayfs without an upper needs two lowers; one read-only layer is a read-only bind.
          mounts = [{ type: 'bind', source: lowers[0], options: ['bind', 'ro'] }];
        } else {
          if (!readonly) {
            upper = join(dir, 'upper');
            mkdirSync(upper, { mode: 0o755 });
            mkdirSync(join(dir, 'work'), { mode: 0o700 });
          }
          mounts = [this.overlayMount(dir, lowers, !readonly)];
        }
      }
      const meta: MountMeta = { key, chainId, mode, readonly, mounts };
      writeFileAtomic(join(dir, 'mount.json'), JSON.stringify(meta));
      return { rootfs, mounts, ...(upper ? { upper } : {}) };
    } catch (err) {
      try { await this.remove(key); } catch { /* report the first failure */ }
      throw err instanceof PierError ? err : new PierError(`cannot prepare snapshot "${key}": ${messageOf(err)}`, { cause: err });
    }
  }

  /** The mounts of a prepared key (what prepareMounts answered), or undefined when it is not prepared. */
  mountsOf(key: string): PreparedMounts | undefined {
    if (!KEY.test(key)) throw new PierError(`invalid snapshot key "${key}"`);
    const dir = join(this.mounts, key);
    let meta: MountMeta;
    try { meta = JSON.parse(readFileSync(join(dir, 'mount.json'), 'utf8')) as MountMeta; } catch { return undefined; }
    if (!meta.mounts) return undefined; // prepared by an older pier, which mounted it on the host
    const upper = join(dir, 'upper');
    return { rootfs: join(dir, 'rootfs'), mounts: meta.mounts, ...(existsSync(upper) ? { upper } : {}) };
  }

  /**
   * One overlay mount as data. Its options must fit one page: beyond that the lowerdirs go through
   * short links `<dir>/l/<n>`, absolute so the mount works from any cwd and mount namespace.
   */
  private overlayMount(dir: string, lowers: string[], rw: boolean): SnapshotMount {
    const tail = rw ? [`upperdir=${join(dir, 'upper')}`, `workdir=${join(dir, 'work')}`] : [];
    let lower = `lowerdir=${lowers.join(':')}`;
    if ([lower, ...tail].join(',').length > MOUNT_DATA_MAX) {
      mkdirSync(join(dir, 'l'));
      lowers.forEach((l, i) => symlinkSync(l, join(dir, 'l', String(i))));
      lower = `lowerdir=${lowers.map((_, i) => join(dir, 'l', String(i))).join(':')}`;
      if ([lower, ...tail].join(',').length > MOUNT_DATA_MAX) throw new PierError(`too many layers (${lowers.length}) for one overlay mount`);
    }
    return { type: 'overlay', source: 'overlay', options: [lower, ...tail] };
  }

  /** Unmount and delete a prepared rootfs; a key that does not exist is not an error. */
  async remove(key: string): Promise<void> {
    if (!KEY.test(key)) throw new PierError(`invalid snapshot key "${key}"`);
    const dir = join(this.mounts, key);
    if (!existsSync(dir)) return;
    const rootfs = join(dir, 'rootfs');
    for (;;) {
      try {
        fsx().umount2(rootfs, 0);
      } catch (err) {
        const code = errnoOf(err);
        if (code === 'EINVAL' || code === 'ENOENT') break; // not (or no longer) a mount point
        if (code === 'EBUSY') { fsx().umount2(rootfs, MNT_DETACH); continue; }
        throw new PierError(`cannot unmount ${rootfs}: ${messageOf(err)}`, { cause: err });
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }

  mountMetas(): MountMeta[] {
    const out: MountMeta[] = [];
    for (const key of readdirSync(this.mounts)) {
      if (key.startsWith('.')) continue;
      try {
        out.push(JSON.parse(readFileSync(join(this.mounts, key, 'mount.json'), 'utf8')) as MountMeta);
      } catch { /* half-prepared: remove() still cleans it */ }
    }
    return out;
  }

  /** Chain IDs unpacked (in either mode). */
  list(): string[] {
    return readdirSync(this.snapshots).filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /** Disk use: snapshots and prepared mounts' own data (uppers, copies), hard links counted once. */
  usage(): Usage {
    const seen = new Set<string>();
    const snapshots = this.list().map((chainId) => ({ chainId, ...treeSize(this.snapDir(chainId), seen) }));
    const mounts = this.mountMetas().map((m) => {
      const dir = join(this.mounts, m.key);
      const sub = m.mode === 'overlay' ? join(dir, 'upper') : join(dir, 'rootfs');
      return { key: m.key, chainId: m.chainId, size: existsSync(sub) ? treeSize(sub, seen).size : 0 };
    });
    const total = snapshots.reduce((a, s) => a + s.size, 0) + mounts.reduce((a, m) => a + m.size, 0);
    return { snapshots, mounts, total };
  }

  /**
   * Delete snapshots not reachable from `keepChainIds` nor used by a prepared mount (a kept chain keeps
   * its parents). Also clears temp dirs left by crashed unpacks. Returns the deleted chain IDs.
   */
  prune(keepChainIds: Iterable<string>): string[] {
    const keep = new Set<string>();
    const roots = [...keepChainIds, ...this.mountMetas().flatMap((m) => (m.chainId ? [m.chainId] : []))];
    for (const r of roots) {
      for (let c: string | undefined = r; c !== undefined && !keep.has(c);) {
        keep.add(c);
        const dir = join(this.snapshots, hexOf(c));
        c = undefined;
        for (const mode of ['overlay', 'copy']) {
          try {
            const m = JSON.parse(readFileSync(join(dir, `${mode}.json`), 'utf8')) as SnapshotMeta;
            if (m.parent) { c = m.parent; break; }
          } catch { /* not unpacked in this mode */ }
        }
      }
    }
    const removed: string[] = [];
    for (const name of readdirSync(this.snapshots)) {
      if (name.startsWith('.tmp-')) {
        // A temp dir is only ours to clear if no unpacker is still writing it; give them an hour.
        const st = lstatSync(join(this.snapshots, name));
        if (Date.now() - st.mtimeMs > 3600_000) rmSync(join(this.snapshots, name), { recursive: true, force: true });
        continue;
      }
      if (!/^[0-9a-f]{64}$/.test(name) || keep.has(`sha256:${name}`)) continue;
      // Rename first so a concurrent prepare sees the snapshot gone, not half-deleted.
      const doomed = join(this.snapshots, `.tmp-prune-${name}`);
      renameSync(join(this.snapshots, name), doomed);
      rmSync(doomed, { recursive: true, force: true });
      removed.push(`sha256:${name}`);
    }
    return removed;
  }
}

/**
 * Take the snapshotter's dirs of an existing install down to 0700 (older pier made them 0755). When
 * `mounts/` (or `snapshots/`) was loose, its entries were made then too: each `mounts/<key>/` is
 * tightened as well (`rootfs/` and `upper/` below keep their modes: they are the container's `/`).
 * Missing dirs are left missing.
 */
export function tightenSnapshotDirs(imagesDir: string): void {
  tightenDir(imagesDir);
  for (const sub of ['snapshots', 'mounts']) {
    const dir = join(imagesDir, sub);
    if (!tightenDir(dir)) continue;
    for (const name of readdirSync(dir)) tightenDir(join(dir, name));
  }
}

function renameIfAbsent(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    const code = errnoOf(err);
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
  }
}

/** cp -a keeps owners, modes, times, xattrs, devices and hard links; reflinks where the fs can. */
function copyTree(from: string, to: string): void {
  try {
    execFileSync('cp', ['-a', '--reflink=auto', '--', from, to], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new PierError(`cannot copy ${from}: ${stderr || messageOf(err)}`, { cause: err });
  }
}

function treeSize(dir: string, seen: Set<string>): { size: number; inodes: number } {
  let size = 0;
  let inodes = 0;
  const walk = (p: string) => {
    let st: Stats;
    try { st = lstatSync(p); } catch { return; }
    const id = `${st.dev}:${st.ino}`;
    if (!seen.has(id)) {
      seen.add(id);
      size += st.blocks * 512;
      inodes++;
    }
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
  };
  walk(dir);
  return { size, inodes };
}

/**
 * Make a snapshot's mounts onto target, in this process's mount namespace (pierd's for a runtime
 * that needs the rootfs mounted before it starts, the build's for its own steps). `extra` flags
 * (nosuid,nodev for the host's view) go onto each.
 */
export function mountAll(mounts: SnapshotMount[], target: string, extra: number): void {
  for (const m of mounts) {
    const ro = m.options.includes('ro');
    const data = m.options.filter((o) => o !== 'ro' && o !== 'rw' && o !== 'bind' && o !== 'rbind').join(',');
    if (m.type === 'bind') {
      fsx().mount(m.source, target, '', MS_BIND, '');
      if (ro || extra) fsx().mount('', target, '', MS_BIND | MS_REMOUNT | (ro ? MS_RDONLY : 0) | extra, '');
    } else {
      fsx().mount(m.source, target, m.type, (ro ? MS_RDONLY : 0) | extra, data);
    }
  }
}
