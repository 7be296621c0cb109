/**
 * pack: a directory tree → a layer blob, deterministically: entries depth-first in byte order of their
 * names, owners/modes/mtimes from the filesystem (mtime clamped to SOURCE_DATE_EPOCH when given),
 * hard links found by inode, xattrs as sorted SCHILY.xattr.* records, and a gzip header without a
 * timestamp. diffUpper reads an overlayfs upper dir the same way, turning overlay's whiteouts back
 * into `.wh.` entries.
 */
import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, fsyncSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, renameSync, rmSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zc, createGzip, createZstdCompress } from 'node:zlib';
import { PierError, errnoOf } from '../../common/errors.ts';
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

class Walker {
  readonly fs: PierFs;
  readonly root: string;
  readonly opts: PackOptions;
  readonly upper: boolean;
  readonly inodes = new Map<string, string>();

  constructor(root: string, opts: PackOptions, upper: boolean) {
    this.fs = fsx();
    this.root = root;
    this.opts = opts;
    this.upper = upper;
  }

  mtime(st: Stats): number {
    const t = Math.floor(st.mtimeMs / 1000);
    const epoch = this.opts.sourceDateEpoch;
    return epoch !== undefined && t > epoch ? epoch : t;
  }

  xattrs(abs: string, rel: string): Map<string, Buffer> | undefined {
    const names = this.fs.llistxattr(abs);
    if (names.length === 0) return undefined;
    const out = new Map<string, Buffer>();
    for (const name of names) {
      if (this.upper && OVERLAY_REFUSED.includes(name)) {
        throw new PierError(`cannot diff "${rel}": overlay ${name} is set (mount without redirect_dir/metacopy)`);
      }
      if (isOverlayXattr(name)) continue;
      const v = this.fs.lgetxattr(abs, name);
      if (v !== null) out.set(name, v);
    }
    return out.size ? out : undefined;
  }

  header(rel: string, abs: string, st: Stats, type: EntryType): WriteHeader {
    const h: WriteHeader = {
      name: rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: type === 'file' ? st.size : 0,
      mtime: this.mtime(st), xattrs: this.xattrs(abs, rel),
    };
    if (type === 'symlink') h.linkname = readlinkSync(abs);
    if (type === 'char' || type === 'block') [h.devmajor, h.devminor] = this.fs.devsplit(st.rdev);
    if (type !== 'directory' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.inodes.get(key);
      if (first !== undefined) return { ...h, type: 'link', linkname: first, size: 0, xattrs: undefined };
      this.inodes.set(key, rel);
    }
    return h;
  }

  *walk(relDir: string): Generator<Buffer> {
    const absDir = relDir === '' ? this.root : join(this.root, relDir);
    const names = readdirSync(absDir).sort(byteOrder);
    const markers: string[] = [];
    const whiteouts: string[] = [];
    const rest: { name: string; st: Stats }[] = [];
    for (const name of names) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      if (this.opts.include && !this.opts.include(rel)) continue;
      const st = lstatSync(join(absDir, name));
      if (this.upper && st.isCharacterDevice() && st.rdev === 0) whiteouts.push(name);
      else rest.push({ name, st });
    }
    if (this.upper && relDir !== '') {
      for (const x of OPAQUE_XATTRS) {
        const v = this.fs.lgetxattr(absDir, x);
        if (v !== null && v.toString() === 'y') { markers.push(OPAQUE_MARKER); break; }
      }
    }
    const dirSt = markers.length || whiteouts.length ? lstatSync(absDir) : undefined;
    for (const m of markers) {
      yield encodeHeader({ name: `${relDir}/${m}`, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: this.mtime(dirSt!) });
    }
    for (const w of whiteouts) {
      const rel = relDir === '' ? `${WHITEOUT_PREFIX}${w}` : `${relDir}/${WHITEOUT_PREFIX}${w}`;
      const st = lstatSync(join(absDir, w));
      yield encodeHeader({ name: rel, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: this.mtime(st) });
    }
    for (const { name, st } of rest) {
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      const abs = join(absDir, name);
      const type = typeOf(st);
      if (!type) continue;
      const h = this.header(rel, abs, st, type);
      yield encodeHeader(h);
      if (h.type === 'file' && h.size > 0) yield* this.data(abs, rel, h.size);
      if (type === 'directory') yield* this.walk(rel);
    }
  }

  *data(abs: string, rel: string, size: number): Generator<Buffer> {
    const fd = openSync(abs, 'r');
    try {
      let left = size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
        let got = 0;
        while (got < buf.length) {
          const n = readSync(fd, buf, got, buf.length - got, null);
          if (n === 0) throw new PierError(`"${rel}" shrank while it was being packed`);
          got += n;
        }
        left -= got;
        yield buf;
      }
    } finally {
      closeSync(fd);
    }
    yield padding(size);
  }

  *tar(): Generator<Buffer> {
    yield* this.walk('');
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

async function writeLayer(walker: Walker, destFile: string): Promise<LayerBlob> {
  const tmp = join(dirname(destFile), `.${basename(destFile)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`);
  const tarDigest = new Digest();
  const blobDigest = new Digest();
  const c = compressor(walker.opts);
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
  try {
    const src = Readable.from(walker.tar(), { objectMode: false, highWaterMark: 1 << 20 });
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
  return writeLayer(new Walker(dir, opts, false), destFile);
}

/**
 * A layer from an overlayfs upper dir: 0:0 char devices become `.wh.<name>`, opaque directories get a
 * `.wh..wh..opq` first among their entries. Upper dirs made with redirect_dir or metacopy are refused.
 */
export function diffUpper(upperDir: string, destFile: string, opts: PackOptions): Promise<LayerBlob> {
  return writeLayer(new Walker(upperDir, opts, true), destFile);
}
