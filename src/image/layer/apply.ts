/**
 * apply: unpack one layer (plain, gzip or zstd tar) into a directory, computing its diffID on the way.
 *
 * format 'overlay': the target is a fresh per-layer dir for overlayfs; whiteouts become 0:0 char
 * devices and opaque markers become trusted.overlay.opaque=y. format 'apply': the target holds the
 * lower layers already and deletions happen in place (the copying snapshotter).
 *
 * Writes are synchronous on purpose: decompression runs on libuv's pool meanwhile, and one sync call
 * per syscall is far cheaper than a promise per syscall for the thousands of small files of a rootfs.
 */
import { createHash } from 'node:crypto';
import {
  closeSync, constants, linkSync, lstatSync, mkdirSync, openSync, readdirSync, rmSync, symlinkSync, unlinkSync,
  writevSync, type Stats,
} from 'node:fs';
import { open } from 'node:fs/promises';
import type { Header } from 'tar-stream';
import type { Readable } from 'node:stream';
import { PierError, errnoOf, messageOf } from '../../common/errors.ts';
import { fsx, type PierFs } from '../../common/fsx.ts';
import { decompressed } from './decompress.ts';
import { TreeResolver, baseOf, escapes, normalizeEntry, parentOf } from './safepath.ts';
import { createExtract, toEntry, type TarEntry } from './tar-read.ts';

export type ApplyFormat = 'overlay' | 'apply';

export interface ApplyOptions {
  format: ApplyFormat;
  /** Expected diffID (sha256:…); a mismatch fails the apply after the stream ends. */
  diffId?: string;
}

export interface ApplyResult {
  diffId: string;
  entries: number;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** Buffered file data is written once it reaches this size (and at the end of each file). */
const FLUSH_AT = 8 << 20;
/** Files written concurrently: creating an inode can block for a long time on a busy journal. */
const MAX_INFLIGHT = 16;
const O_CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** The part of tar-stream's entry stream we use. */
interface EntryBody {
  on(ev: string, fn: (x?: unknown) => void): unknown;
}

function writeAll(fd: number, chunks: Buffer[]): void {
  let bufs = chunks;
  let left = chunks.reduce((a, b) => a + b.length, 0);
  while (left > 0) {
    const n = writevSync(fd, bufs);
    left -= n;
    bufs = afterShortWrite(bufs, n);
  }
}

/** What is left of a writev after it wrote n bytes (short writes are retried with the rest). */
function afterShortWrite(bufs: Buffer[], n: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const b of bufs) {
    if (n >= b.length) { n -= b.length; continue; }
    rest.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return rest;
}

/** xattrs a layer may not set: they would forge overlayfs state (whiteouts, redirects, opacity). */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

class Applier {
  readonly fs: PierFs;
  readonly tree: TreeResolver;
  readonly format: ApplyFormat;
  /** Paths this layer created ('apply' format): an opaque marker must not remove its own siblings. */
  readonly created = new Set<string>();
  /** Directory mtimes are set last, since creating their children changes them. */
  readonly dirTimes: { abs: string; sec: number; nsec: number }[] = [];
  entries = 0;

  constructor(target: string, format: ApplyFormat) {
    this.fs = fsx();
    this.tree = new TreeResolver(target);
    this.format = format;
  }

  /** The host path for entry `rel`, parents resolved (and created) inside the tree. */
  place(rel: string, entry: string): { abs: string; real: string } {
    const parent = this.tree.dir(parentOf(rel), entry, true)!;
    const real = parent === '' ? baseOf(rel) : `${parent}/${baseOf(rel)}`;
    return { abs: this.tree.abs(real), real };
  }

  lstat(abs: string): Stats | undefined {
    try {
      return lstatSync(abs);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  remove(abs: string, real: string, st: Stats): void {
    if (st.isDirectory()) {
      rmSync(abs, { recursive: true, force: true });
      this.tree.forget(real);
    } else {
      unlinkSync(abs);
      if (st.isSymbolicLink()) this.tree.forget(real);
    }
  }

  whiteout(rel: string, entry: string): void {
    const parentRel = parentOf(rel);
    const name = baseOf(rel);
    if (name === OPAQUE_MARKER) {
      const parent = this.tree.dir(parentRel, entry, true)!;
      const dirAbs = this.tree.abs(parent);
      if (this.format === 'overlay') {
        this.fs.lsetxattr(dirAbs, OPAQUE_XATTR, Buffer.from('y'));
      } else {
        for (const child of readdirSync(dirAbs)) {
          const real = parent === '' ? child : `${parent}/${child}`;
          if (this.created.has(real)) continue;
          const abs = this.tree.abs(real);
          this.remove(abs, real, lstatSync(abs));
        }
      }
      return;
    }
    const hidden = name.slice(WHITEOUT_PREFIX.length);
    if (hidden === '' || hidden === '.' || hidden === '..' || hidden.startsWith(WHITEOUT_PREFIX)) {
      throw new PierError(`layer entry "${entry}" is not a valid whiteout`);
    }
    const target = parentRel === '' ? hidden : `${parentRel}/${hidden}`;
    const { abs, real } = this.place(target, entry);
    const st = this.lstat(abs);
    if (st) this.remove(abs, real, st);
    if (this.format === 'overlay') this.fs.mknod(abs, constants.S_IFCHR, 0);
  }

  /** Creates the entry's node (without data); returns an fd for regular files unless `deferred`. */
  create(e: TarEntry, rel: string, deferred = false): { fd?: number; abs: string } {
    const { abs, real } = this.place(rel, e.name);
    const st = this.lstat(abs);
    if (st) {
      if (e.type === 'directory' && st.isDirectory()) {
        this.finish(e, abs);
        return { abs };
      }
      this.remove(abs, real, st);
    }
    if (this.format === 'apply') this.created.add(real);
    switch (e.type) {
      case 'directory':
        mkdirSync(abs, { mode: 0o700 });
        this.tree.known(rel, real);
        break;
      case 'file':
        return deferred ? { abs } : { fd: openSync(abs, O_CREATE, 0o600), abs };
      case 'symlink':
        symlinkSync(e.linkname, abs);
        break;
      case 'link': {
        if (e.linkname.startsWith('/')) throw escapes(e.name);
        const targetRel = normalizeEntry(e.linkname, e.name);
        if (targetRel === '') throw new PierError(`layer entry "${e.name}" is a hard link to the root`);
        const parent = this.tree.dir(parentOf(targetRel), e.name, false);
        if (parent === undefined) throw new PierError(`layer entry "${e.name}" links to "${e.linkname}", which does not exist`);
        const targetAbs = this.tree.abs(parent === '' ? baseOf(targetRel) : `${parent}/${baseOf(targetRel)}`);
        try {
          linkSync(targetAbs, abs);
        } catch (err) {
          if (errnoOf(err) === 'ENOENT') throw new PierError(`layer entry "${e.name}" links to "${e.linkname}", which does not exist`);
          throw err;
        }
        // A hard link shares its target's inode: its header's metadata is the target's.
        return { abs };
      }
      case 'char':
      case 'block':
        this.fs.mknod(abs, (e.type === 'char' ? constants.S_IFCHR : constants.S_IFBLK) | e.mode, this.fs.makedev(e.devmajor, e.devminor));
        break;
      case 'fifo':
        this.fs.mkfifo(abs, e.mode);
        break;
    }
    this.finish(e, abs);
    return { abs };
  }

  /** Owner, mode, mtime, then xattrs (chown would clear security.capability if it came after). */
  finish(e: TarEntry, abs: string): void {
    this.fs.lsetmeta(abs, e.uid, e.gid, e.type === 'symlink' ? -1 : e.mode, e.mtimeSec, e.mtimeNsec);
    if (e.type === 'directory') this.dirTimes.push({ abs, sec: e.mtimeSec, nsec: e.mtimeNsec });
    for (const [name, value] of e.xattrs) {
      if (isOverlayXattr(name)) continue;
      try {
        this.fs.lsetxattr(abs, name, value);
      } catch (err) {
        throw new PierError(`layer entry "${e.name}": cannot set xattr ${name}: ${messageOf(err)}`, { cause: err });
      }
    }
  }

  /** Small files being written on libuv's pool, by host path: inode creation overlaps across files. */
  readonly inflight = new Map<string, Promise<void>>();
  private asyncError: unknown;

  /** Wait for every in-flight file write; rethrows the first failure. */
  async drain(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight.values()]);
    this.check();
  }

  check(): void {
    if (this.asyncError !== undefined) throw this.asyncError;
  }

  /** Whether `e` may touch a path an in-flight write owns (then those writes must finish first). */
  private conflicts(e: TarEntry, rel: string): boolean {
    if (e.type === 'link' || baseOf(rel).startsWith(WHITEOUT_PREFIX)) return true;
    const { abs } = this.place(rel, e.name);
    if (this.inflight.has(abs)) return true;
    const st = this.lstat(abs);
    return st !== undefined && st.isDirectory() && e.type !== 'directory';
  }

  private spawnWrite(e: TarEntry, abs: string, chunks: Buffer[]): void {
    const job = (async () => {
      const fh = await open(abs, O_CREATE, 0o600);
      try {
        let bufs = chunks;
        let left = e.size;
        while (left > 0) {
          const { bytesWritten: n } = await fh.writev(bufs);
          left -= n;
          bufs = afterShortWrite(bufs, n);
        }
      } finally {
        await fh.close();
      }
      this.finish(e, abs);
    })().catch((err: unknown) => {
      this.asyncError ??= err instanceof PierError ? err : new PierError(`layer entry "${e.name}": ${messageOf(err)}`, { cause: err });
    }).finally(() => this.inflight.delete(abs));
    this.inflight.set(abs, job);
  }

  async handle(header: Header, body: EntryBody): Promise<void> {
    this.check();
    const e = toEntry(header);
    if (!e) throw new PierError(`layer entry "${header.name}" has unsupported type ${header.type}`);
    const rel = normalizeEntry(e.name);
    if (rel !== '' && this.inflight.size && this.conflicts(e, rel)) await this.drain();
    let fd: number | undefined;
    let abs = '';
    const deferred = e.type === 'file' && e.size <= FLUSH_AT;
    if (rel === '') {
      if (e.type !== 'directory') throw new PierError(`layer entry "${e.name}" replaces the root with a non-directory`);
      this.finish(e, this.tree.root);
    } else if (baseOf(rel).startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(rel, e.name);
    } else {
      const made = this.create(e, rel, deferred);
      fd = made.fd;
      abs = made.abs;
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    const src = body;
    try {
      await new Promise<void>((resolve, reject) => {
        src.on('error', (err) => reject(err));
        src.on('data', (data) => {
          if (!deferred && fd === undefined) return;
          chunks.push(data as Buffer);
          bytes += (data as Buffer).length;
          if (fd !== undefined && bytes >= FLUSH_AT) {
            try { writeAll(fd, chunks.splice(0)); bytes = 0; } catch (err) { reject(err); }
          }
        });
        src.on('end', () => resolve());
      });
      if (fd !== undefined) {
        writeAll(fd, chunks);
        closeSync(fd);
        fd = undefined;
        this.finish(e, abs);
      }
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    if (deferred && abs) {
      this.spawnWrite(e, abs, chunks);
      if (this.inflight.size >= MAX_INFLIGHT) await Promise.race(this.inflight.values());
    }
  }

  done(): void {
    for (let i = this.dirTimes.length - 1; i >= 0; i--) {
      const d = this.dirTimes[i];
      this.fs.lsetmeta(d.abs, -1, -1, -1, d.sec, d.nsec);
    }
  }
}

/** Unpack the layer in `input` into `target` (which must exist). */
export async function applyLayer(input: Readable, target: string, opts: ApplyOptions): Promise<ApplyResult> {
  const ap = new Applier(target, opts.format);
  const { stream: src } = await decompressed(input);
  const hash = createHash('sha256');
  const extract = createExtract();

  extract.on('entry', (header, body, next) => {
    ap.entries++;
    // next(err) destroys the extractor, and with it this entry's body: its error is already ours.
    body.on('error', () => {});
    ap.handle(header, body).then(() => next(), (err: unknown) => {
      next(err instanceof PierError ? err : new PierError(`layer entry "${header.name}": ${messageOf(err)}`, { cause: err }));
    });
  });

  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const onError = (err: unknown) => {
      if (failed) return;
      failed = true;
      src.destroy();
      extract.destroy();
      reject(err instanceof PierError ? err : new PierError(`cannot read layer: ${messageOf(err)}`, { cause: err }));
    };
    src.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      if (!extract.write(chunk)) src.pause();
    });
    extract.on('drain', () => src.resume());
    src.on('end', () => (extract as unknown as { end(): void }).end());
    src.on('error', onError);
    extract.on('error', onError);
    extract.on('finish', () => { if (!failed) resolve(); });
  }).catch(async (err: unknown) => {
    // Let writes already in flight settle, so nothing touches the target after we report.
    await Promise.allSettled([...ap.inflight.values()]);
    throw err;
  });
  await ap.drain();
  ap.done();
  const diffId = `sha256:${hash.digest('hex')}`;
  if (opts.diffId && opts.diffId !== diffId) {
    throw new PierError(`layer diffID mismatch: expected ${opts.diffId}, got ${diffId}`);
  }
  return { diffId, entries: ap.entries };
}
