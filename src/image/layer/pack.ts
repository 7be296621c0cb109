/**
 * pack: a directory tree → a layer blob, deterministically: entries depth-first in byte order of their
 * names, owners/modes/mtimes from the filesystem (mtime clamped to SOURCE_DATE_EPOCH when given),
 * hard links found by inode, xattrs as sorted SCHILY.xattr.* records, and a gzip header without a
 * timestamp. diffUpper reads an overlayfs upper dir the same way, turning overlay's whiteouts back
 * into `.wh.` entries.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, createWriteStream, fstatSync, fsyncSync, openSync, readSync, readdirSync, readlinkSync, renameSync, rmSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zc, createGzip, createZstdCompress } from 'node:zlib';
import { PierError, errnoOf } from '../../common/errors.ts';
import { at, lstatAt, openDirAt, openHostDir, procFd, type Resolved, type Scope } from '../../common/rooted.ts';
import { fsx, type PierFs } from '../../common/fsx.ts';
import { OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX, isOverlayXattr } from './apply.ts';
import { mediaTypeOf, type Compression, type LayerBlob } from './media.ts';
import { END_OF_ARCHIVE, encodeHeader, padding, type WriteHeader } from './tar-write.ts';
import type { EntryType } from './tar-read.ts';

export interface PackOptions {
  compression: Compression;
  /** Clamp every mtime to this (seconds since the epoch), for reproducible layers. */
  sourceDateEpoch?: number;
  /** Entries to keep, by path relative to the dir ("etc/passwd"); a directory left out drops its subtree. */
  include?: (relPath: string) => boolean;
  /** gzip 1–9 (default 6) or zstd 1–19 (default 3). */
  level?: number;
}

const READ_CHUNK = 1 << 20;

/** xattrs overlayfs keeps on upper dirs; they never belong in a layer. */
const OVERLAY_REFUSED = ['trusted.overlay.redirect', 'trusted.overlay.metacopy', 'user.overlay.redirect', 'user.overlay.metacopy'];
const OPAQUE_XATTRS = [OPAQUE_XATTR, 'user.overlay.opaque'];

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function typeOf(st: Stats): EntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined; // sockets: not representable in tar, skipped like other archivers do
}

/** Where one node is: its name in a directory fd (`name` '' for the directory fd itself). */
interface Node {
  dirfd: number;
  name: string;
  /** Its path in the scope, for mounts and messages. */
  path: string;
}

/**
 * A tree walk that writes tar, through fds only (common/rooted.ts): each directory is opened
 * relative to its parent's fd without following symlinks, each file is opened with O_NOFOLLOW and
 * described by fstat of that fd, so a tree that changes under the walk (a running container's) can
 * make the archive odd but can never make it read anything outside the tree.
 */
class Walker {
  readonly fs: PierFs;
  readonly opts: PackOptions;
  readonly upper: boolean;
  /** Mounted trees inside the walked one (a container's volumes), switched to by path. */
  readonly scope: Scope | undefined;
  readonly inodes = new Map<string, string>();

  constructor(opts: PackOptions, upper: boolean, scope?: Scope) {
    this.fs = fsx();
    this.opts = opts;
    this.upper = upper;
    this.scope = scope;
  }

  mtime(st: Stats): number {
    const t = Math.floor(st.mtimeMs / 1000);
    const epoch = this.opts.sourceDateEpoch;
    return epoch !== undefined && t > epoch ? epoch : t;
  }

  /** `of`: the node's open fd, or (symlinks, devices) its name in its directory's fd. */
  xattrs(of: string | number, rel: string): Map<string, Buffer> | undefined {
    const names = this.fs.llistxattr(of);
    if (names.length === 0) return undefined;
    const out = new Map<string, Buffer>();
    for (const name of names) {
      if (this.upper && OVERLAY_REFUSED.includes(name)) {
        throw new PierError(`cannot diff "${rel}": overlay ${name} is set (mount without redirect_dir/metacopy)`);
      }
      if (isOverlayXattr(name)) continue;
      const v = this.fs.lgetxattr(of, name);
      if (v !== null) out.set(name, v);
    }
    return out.size ? out : undefined;
  }

  /** `of`: as for xattrs; a symlink's is its name (read with readlink). */
  header(rel: string, of: string | number, st: Stats, type: EntryType): WriteHeader {
    const h: WriteHeader = {
      name: rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === 'file' ? st.size : 0,
      mtime: this.mtime(st), xattrs: this.xattrs(of, rel),
    };
    if (type === 'symlink') h.linkname = readlinkSync(of as string);
    if (type === 'char' || type === 'block') [h.devmajor, h.devminor] = this.fs.devsplit(st.rdev);
    if (type !== 'directory' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.inodes.get(key);
      if (first !== undefined) return { ...h, type: 'link', linkname: first, size: 0, xattrs: undefined };
      this.inodes.set(key, rel);
    }
    return h;
  }

  /** The directory (fd, owned by the caller) at a child's place: a mount's root when one is there. */
  private openChildDir(dirfd: number, name: string, path: string): number {
    const m = this.scope?.openMount(path);
    return m ? m.fd : openDirAt(dirfd, name);
  }

  /** A child's place, a bind-mounted file's source when one is there. */
  private childNode(dirfd: number, name: string, path: string): Node {
    const m = this.scope?.mountAt(path);
    if (m?.name !== undefined) return { dirfd: m.fd, name: m.name, path };
    return { dirfd, name, path };
  }

  /** Entries of the directory open as `fd` (named `relDir` in the archive, `path` in the scope). */
  *walk(fd: number, relDir: string, path: string): Generator<Buffer> {
    const names = readdirSync(procFd(fd)).sort(byteOrder);
    const markers: string[] = [];
    const whiteouts: string[] = [];
    const rest: { name: string; st: Stats }[] = [];
    for (const name of names) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      if (this.opts.include && !this.opts.include(rel)) continue;
      const st = lstatAt(fd, name);
      if (!st) continue; // removed while we walked
      if (this.upper && st.isCharacterDevice() && st.rdev === 0) whiteouts.push(name);
      else rest.push({ name, st });
    }
    if (this.upper && relDir !== '') {
      for (const x of OPAQUE_XATTRS) {
        const v = this.fs.lgetxattr(fd, x);
        if (v !== null && v.toString() === 'y') { markers.push(OPAQUE_MARKER); break; }
      }
    }
    const dirSt = markers.length || whiteouts.length ? fstatSync(fd) : undefined;
    for (const m of markers) {
      yield encodeHeader({ name: `${relDir}/${m}`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: this.mtime(dirSt!) });
    }
    for (const w of whiteouts) {
      const rel = relDir === '' ? `${WHITEOUT_PREFIX}${w}` : `${relDir}/${WHITEOUT_PREFIX}${w}`;
      const st = lstatAt(fd, w);
      if (!st) continue;
      yield encodeHeader({ name: rel, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: this.mtime(st) });
    }
    for (const { name, st } of rest) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      const childPath = path === '/' ? `/${name}` : `${path}/${name}`;
      yield* this.node(this.childNode(fd, name, childPath), rel, st);
    }
  }

  /** One node and, for a directory, everything below it. `st` is its lstat, as the listing saw it. */
  *node(n: Node, rel: string, st: Stats): Generator<Buffer> {
    const type = typeOf(st);
    if (!type) return;
    const path = at(n.dirfd, n.name);
    if (type === 'directory') {
      let fd: number;
      try {
        fd = this.openChildDir(n.dirfd, n.name, n.path);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ELOOP' || errnoOf(err) === 'ENOTDIR') return; // changed under us
        throw err;
      }
      try {
        if (rel !== '') yield encodeHeader(this.header(rel, fd, fstatSync(fd), 'directory'));
        yield* this.walk(fd, rel, n.path);
      } finally {
        closeSync(fd);
      }
      return;
    }
    if (type === 'file') {
      let fd: number;
      try {
        // O_NONBLOCK: if the name became a fifo since the listing, opening it must not hang.
        fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ELOOP') return;
        throw err;
      }
      try {
        const fst = fstatSync(fd);
        if (!fst.isFile()) return;
        const h = this.header(rel, fd, fst, 'file');
        yield encodeHeader(h);
        if (h.type === 'file' && h.size > 0) yield* this.data(fd, rel, h.size);
      } finally {
        closeSync(fd);
      }
      return;
    }
    yield encodeHeader(this.header(rel, path, st, type));
  }

  *data(fd: number, rel: string, size: number): Generator<Buffer> {
    let left = size;
    let pos = 0;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, pos + got);
        if (n === 0) throw new PierError(`"${rel}" shrank while it was being packed`);
        got += n;
      }
      left -= got;
      pos += got;
      yield buf;
    }
    yield padding(size);
  }

  /** A whole tree: the directory open as `fd`, its entries named from its root. */
  *tar(fd: number): Generator<Buffer> {
    yield* this.walk(fd, '', '/');
    yield END_OF_ARCHIVE;
  }

  /** One resolved node of a scope as the archive's top entry `rel`, and what is below it. */
  *archive(top: Resolved, rel: string): Generator<Buffer> {
    if (top.name === '') {
      // rel '' makes the directory the archive's root: './', then its entries by their names.
      yield encodeHeader(this.header(rel || './', top.dir.fd, fstatSync(top.dir.fd), 'directory'));
      yield* this.walk(top.dir.fd, rel, top.dir.path);
    } else {
      const st = lstatAt(top.dir.fd, top.name);
      if (st) yield* this.node({ dirfd: top.dir.fd, name: top.name, path: top.dir.path === '/' ? `/${top.name}` : `${top.dir.path}/${top.name}` }, rel, st);
    }
    yield END_OF_ARCHIVE;
  }
}

class Digest extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

function compressor(opts: PackOptions): Transform | undefined {
  switch (opts.compression) {
    case 'gzip': return createGzip({ level: opts.level ?? 6, chunkSize: 1 << 20 });
    case 'zstd': return createZstdCompress({ chunkSize: 1 << 20, params: { [zc.ZSTD_c_compressionLevel]: opts.level ?? 3 } });
    case 'none': return undefined;
    default: throw new PierError(`unknown layer compression "${String(opts.compression)}"`);
  }
}

async function writeLayer(walker: Walker, dir: string, destFile: string): Promise<LayerBlob> {
  const tmp = join(dirname(destFile), `.${basename(destFile)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`);
  const tarDigest = new Digest();
  const blobDigest = new Digest();
  const c = compressor(walker.opts);
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
  const root = openHostDir(dir);
  try {
    const src = Readable.from(walker.tar(root), { objectMode: false, highWaterMark: 1 << 20 });
    if (c) await pipeline(src, tarDigest, c, blobDigest, out);
    else await pipeline(src, tarDigest, blobDigest, out);
    const fd = openSync(tmp, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, destFile);
  } catch (err) {
    rmSync(tmp, { force: true });
    if (errnoOf(err) === 'ENOENT' && err instanceof Error && 'path' in err) {
      throw new PierError(`cannot pack: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  } finally {
    closeSync(root);
  }
  return {
    mediaType: mediaTypeOf(walker.opts.compression),
    digest: `sha256:${blobDigest.hash.digest('hex')}`,
    size: blobDigest.size,
    diffId: `sha256:${tarDigest.hash.digest('hex')}`,
  };
}

/** Pack the tree under `dir` into a layer blob at `destFile` (written atomically). */
export function packDirectory(dir: string, destFile: string, opts: PackOptions): Promise<LayerBlob> {
  return writeLayer(new Walker(opts, false), dir, destFile);
}

/**
 * A layer from an overlayfs upper dir: 0:0 char devices become `.wh.<name>`, opaque directories get a
 * `.wh..wh..opq` first among their entries. Upper dirs made with redirect_dir or metacopy are refused.
 */
export function diffUpper(upperDir: string, destFile: string, opts: PackOptions): Promise<LayerBlob> {
  return writeLayer(new Walker(opts, true), upperDir, destFile);
}

export interface ArchiveOptions {
  /** Follow a symlink at the path itself (`cp -L`); a path ending in `/` or `/.` is always followed. */
  followLink?: boolean;
  /** A directory's entries at the archive's root (`./`, then their own names): a volume's copy-up. */
  contentsOnly?: boolean;
}

/**
 * `pier cp` out of a container: a tar of the node at `path` in `scope` (the container's root with
 * its volumes and binds), its top entry named after the path's last component. Symlinks on the way
 * are resolved inside the scope; the node itself is archived as it is (a symlink as a symlink), as
 * docker does. Throws ENOENT/ENOTDIR before anything is produced when the path is not there. The
 * scope must stay open until the stream ends.
 */
export function archivePath(scope: Scope, path: string, opts: ArchiveOptions = {}): Readable {
  const follow = opts.followLink === true || /\/\.?$/.test(path);
  const top = scope.resolve(path, { followLast: follow });
  try {
    if (top.name !== '' && !lstatAt(top.dir.fd, top.name)) {
      const err = new Error(`ENOENT: no such file or directory, '${path}'`) as NodeJS.ErrnoException;
      err.code = 'ENOENT';
      throw err;
    }
  } catch (err) {
    closeSync(top.dir.fd);
    throw err;
  }
  const last = path.split('/').filter((c) => c !== '' && c !== '.').pop();
  const name = opts.contentsOnly ? '' : last === undefined || last === '..' ? '.' : last;
  const walker = new Walker({ compression: 'none' }, false, scope);
  const src = Readable.from(walker.archive(top, name), { objectMode: false, highWaterMark: 1 << 20 });
  src.once('close', () => closeSync(top.dir.fd));
  return src;
}
