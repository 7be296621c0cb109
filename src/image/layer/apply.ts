/**
 * apply: unpack one layer (plain, gzip or zstd tar) into a directory, computing its diffID on the way.
 *
 * format 'overlay': the target is a fresh per-layer dir for overlayfs; whiteouts become 0:0 char
 * devices and opaque markers become trusted.overlay.opaque=y. format 'apply': the target holds the
 * lower layers already and deletions happen in place (the copying snapshotter, `pier cp` into a
 * container).
 *
 * Every node is made and changed through fds (common/rooted.ts): the parent directory of each entry
 * is resolved inside the target's scope one component at a time (symlinks followed as a chroot at
 * the scope's root would: an absolute link target restarts at that root), the node is created by
 * one name in that directory's fd, and owner, mode, times and xattrs are set on the node's own fd.
 * So a target that another party changes while we write — a running container — cannot send a
 * write, chmod or chown outside it (CVE-2018-15664 against docker cp).
 *
 * Writes are synchronous on purpose: decompression runs on libuv's pool meanwhile, and one sync call
 * per syscall is far cheaper than a promise per syscall for the thousands of small files of a rootfs.
 */
import { closeSync, constants, linkSync, mkdirSync, openSync, readdirSync, symlinkSync, writevSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Header } from 'tar-stream';
import type { Readable } from 'node:stream';
import { PierError, errnoOf, messageOf } from '../../common/errors.ts';
import { fsx, type PierFs } from '../../common/fsx.ts';
import { Scope, at, lstatAt, procFd, removeAt, type Dir } from '../../common/rooted.ts';
import { DirCache, type HeldDir } from './dircache.ts';
import { baseOf, normalizeEntry, parentOf } from './safepath.ts';
import { readTar, toEntry, type EntryBody, type TarEntry } from './tar-read.ts';

/** 'plain': files as they are, no whiteouts (what `pier cp` puts into a container); else as 'apply'. */
export type ApplyFormat = 'overlay' | 'apply' | 'plain';

export interface ApplyOptions {
  format: ApplyFormat;
  /** Expected diffID (sha256:…); a mismatch fails the apply after the stream ends. */
  diffId?: string;
}

export interface ApplyResult {
  /** '' for the 'plain' format (not a layer: nothing to check it against). */
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

/** What an entry's node is about to be, and the directory it goes in (referenced until released). */
interface Place {
  dir: HeldDir;
  name: string;
  /** `<dir id>/<name>`: one key per node, however many names lead to its directory. */
  key: string;
}

class Applier {
  readonly fs: PierFs;
  readonly dirs: DirCache;
  readonly base: Dir;
  readonly format: ApplyFormat;
  /** Nodes this layer created ('apply' format): an opaque marker must not remove its own siblings. */
  readonly created = new Set<string>();
  /** Directory mtimes are set last, since creating their children changes them. */
  readonly dirTimes: { rel: string; entry: string; sec: number; nsec: number }[] = [];
  entries = 0;

  constructor(scope: Scope, base: Dir, format: ApplyFormat) {
    this.fs = fsx();
    this.base = base;
    this.dirs = new DirCache(scope, base);
    this.format = format;
  }

  /** The directory entry `rel` goes in (made if missing) and its name there. */
  place(rel: string, entry: string): Place {
    const dir = this.dirs.acquire(parentOf(rel), entry, true)!;
    const name = baseOf(rel);
    return { dir, name, key: `${dir.id}/${name}` };
  }

  /** Remove whatever is at `name` in `dir` (a whole tree for a directory), by fds only. */
  remove(dir: HeldDir, name: string, st: Stats): void {
    removeAt(dir.fd, name);
    // Names resolved through what was removed may now lead elsewhere.
    if (st.isDirectory() || st.isSymbolicLink()) this.dirs.clear();
  }

  whiteout(rel: string, entry: string): void {
    const parentRel = parentOf(rel);
    const name = baseOf(rel);
    if (name === OPAQUE_MARKER) {
      const dir = this.dirs.acquire(parentRel, entry, true)!;
      try {
        if (this.format === 'overlay') {
          this.fs.fsetxattr(dir.fd, OPAQUE_XATTR, Buffer.from('y'));
        } else {
          for (const child of readdirSync(procFd(dir.fd))) {
            if (this.created.has(`${dir.id}/${child}`)) continue;
            const st = lstatAt(dir.fd, child);
            if (st) this.remove(dir, child, st);
          }
        }
      } finally {
        this.dirs.release(dir);
      }
      return;
    }
    const hidden = name.slice(WHITEOUT_PREFIX.length);
    if (hidden === '' || hidden === '.' || hidden === '..' || hidden.startsWith(WHITEOUT_PREFIX)) {
      throw new PierError(`layer entry "${entry}" is not a valid whiteout`);
    }
    const p = this.place(parentRel === '' ? hidden : `${parentRel}/${hidden}`, entry);
    try {
      const st = lstatAt(p.dir.fd, p.name);
      if (st) this.remove(p.dir, p.name, st);
      if (this.format === 'overlay') this.fs.mknod(at(p.dir.fd, p.name), constants.S_IFCHR, 0);
    } finally {
      this.dirs.release(p.dir);
    }
  }

  /**
   * Creates the entry's node (without data). A regular file comes back open (fd), or, when
   * `deferred`, not yet made: its Place then stays referenced for the write that makes it.
   */
  create(e: TarEntry, rel: string, deferred = false): { fd?: number; place?: Place } {
    const p = this.place(rel, e.name);
    /** The Place goes back to the caller with a file to write: it releases it. */
    let handedOut = false;
    try {
      const st = lstatAt(p.dir.fd, p.name);
      if (st) {
        if (e.type === 'directory' && st.isDirectory()) {
          this.finish(e, p, rel);
          return {};
        }
        this.remove(p.dir, p.name, st);
      }
      if (this.format === 'apply') this.created.add(p.key);
      const path = at(p.dir.fd, p.name);
      switch (e.type) {
        case 'directory':
          mkdirSync(path, { mode: 0o700 });
          break;
        case 'file':
          if (deferred) { handedOut = true; return { place: p }; }
          {
            const fd = openSync(path, O_CREATE, 0o600);
            handedOut = true;
            return { fd, place: p };
          }
        case 'symlink':
          symlinkSync(e.linkname, path);
          break;
        case 'link': {
          const targetRel = normalizeEntry(e.linkname, e.name);
          if (targetRel === '') throw new PierError(`layer entry "${e.name}" is a hard link to the root`);
          const from = this.dirs.acquire(parentOf(targetRel), e.name, false);
          if (!from) throw new PierError(`layer entry "${e.name}" links to "${e.linkname}", which does not exist`);
          try {
            // link(2) does not follow a symlink at the target: a link to a symlink is a link to it.
            linkSync(at(from.fd, baseOf(targetRel)), path);
          } catch (err) {
            if (errnoOf(err) === 'ENOENT') throw new PierError(`layer entry "${e.name}" links to "${e.linkname}", which does not exist`);
            throw err;
          } finally {
            this.dirs.release(from);
          }
          // A hard link shares its target's inode: its header's metadata is the target's.
          return {};
        }
        case 'char':
        case 'block':
          this.fs.mknod(path, (e.type === 'char' ? constants.S_IFCHR : constants.S_IFBLK) | e.mode, this.fs.makedev(e.devmajor, e.devminor));
          break;
        case 'fifo':
          this.fs.mkfifo(path, e.mode);
          break;
      }
      this.finish(e, p, rel);
      return {};
    } finally {
      if (!handedOut) this.dirs.release(p.dir);
    }
  }

  /**
   * Owner, mode, mtime, then xattrs (chown would clear security.capability if it came after). A
   * regular file's are set on its own fd (`fd`); the root's on the base fd; anything else's by its
   * one name in its directory's fd with calls that never follow a final symlink (lchown, fchmodat2
   * with AT_SYMLINK_NOFOLLOW, utimensat likewise, lsetxattr): a name swapped for a symlink in
   * between gets the change itself, or a refusal — never what it points to.
   */
  finish(e: TarEntry, p: Place | undefined, rel: string, fd?: number): void {
    if (e.type === 'directory') this.dirTimes.push({ rel, entry: e.name, sec: e.mtimeSec, nsec: e.mtimeNsec });
    const onFd = fd ?? (p ? undefined : this.base.fd);
    if (onFd !== undefined) {
      this.fs.fsetmeta(onFd, e.uid, e.gid, e.mode, e.mtimeSec, e.mtimeNsec);
      this.xattrs(e, (name, value) => this.fs.fsetxattr(onFd, name, value));
      return;
    }
    const path = at(p!.dir.fd, p!.name);
    this.fs.lsetmeta(path, e.uid, e.gid, e.type === 'symlink' ? -1 : e.mode, e.mtimeSec, e.mtimeNsec);
    this.xattrs(e, (name, value) => this.fs.lsetxattr(path, name, value));
  }

  private xattrs(e: TarEntry, set: (name: string, value: Buffer) => void): void {
    for (const [name, value] of e.xattrs) {
      if (isOverlayXattr(name)) continue;
      try {
        set(name, value);
      } catch (err) {
        throw new PierError(`layer entry "${e.name}": cannot set xattr ${name}: ${messageOf(err)}`, { cause: err });
      }
    }
  }

  /** Small files being written on libuv's pool, by node key: inode creation overlaps across files. */
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

  /** Whether `e` may touch a node an in-flight write owns (then those writes must finish first). */
  private conflicts(e: TarEntry, rel: string): boolean {
    if (e.type === 'link' || (this.format !== 'plain' && baseOf(rel).startsWith(WHITEOUT_PREFIX))) return true;
    const p = this.place(rel, e.name);
    try {
      if (this.inflight.has(p.key)) return true;
      const st = lstatAt(p.dir.fd, p.name);
      return st !== undefined && st.isDirectory() && e.type !== 'directory';
    } finally {
      this.dirs.release(p.dir);
    }
  }

  /** Make and write a small file on libuv's pool; its Place is released when done. */
  private spawnWrite(e: TarEntry, p: Place, rel: string, chunks: Buffer[]): void {
    const job = (async () => {
      const fh = await open(at(p.dir.fd, p.name), O_CREATE, 0o600);
      try {
        let bufs = chunks;
        let left = e.size;
        while (left > 0) {
          const { bytesWritten: n } = await fh.writev(bufs);
          left -= n;
          bufs = afterShortWrite(bufs, n);
        }
        this.finish(e, p, rel, fh.fd);
      } finally {
        await fh.close();
      }
    })().catch((err: unknown) => {
      this.asyncError ??= err instanceof PierError ? err : new PierError(`layer entry "${e.name}": ${messageOf(err)}`, { cause: err });
    }).finally(() => {
      this.inflight.delete(p.key);
      this.dirs.release(p.dir);
    });
    this.inflight.set(p.key, job);
  }

  async handle(header: Header, body: EntryBody): Promise<void> {
    this.check();
    const e = toEntry(header);
    if (!e) throw new PierError(`layer entry "${header.name}" has unsupported type ${header.type}`);
    const rel = normalizeEntry(e.name);
    if (rel !== '' && this.inflight.size && this.conflicts(e, rel)) await this.drain();
    let fd: number | undefined;
    let place: Place | undefined;
    const deferred = e.type === 'file' && e.size <= FLUSH_AT;
    if (rel === '') {
      if (e.type !== 'directory') throw new PierError(`layer entry "${e.name}" replaces the root with a non-directory`);
      this.finish(e, undefined, '');
    } else if (this.format !== 'plain' && baseOf(rel).startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(rel, e.name);
    } else {
      const made = this.create(e, rel, deferred);
      fd = made.fd;
      place = made.place;
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
        this.finish(e, place, rel, fd);
      }
    } catch (err) {
      if (deferred && place) { this.dirs.release(place.dir); place = undefined; }
      throw err;
    } finally {
      if (fd !== undefined) {
        closeSync(fd);
        this.dirs.release(place!.dir);
      }
    }
    if (deferred && place) {
      this.spawnWrite(e, place, rel, chunks);
      if (this.inflight.size >= MAX_INFLIGHT) await Promise.race(this.inflight.values());
    }
  }

  /** Directory mtimes, deepest first; a directory a later entry removed is skipped. */
  done(): void {
    for (let i = this.dirTimes.length - 1; i >= 0; i--) {
      const d = this.dirTimes[i];
      const dir = this.dirs.acquire(d.rel, d.entry, false);
      if (!dir) continue;
      try {
        this.fs.fsetmeta(dir.fd, -1, -1, -1, d.sec, d.nsec);
      } finally {
        this.dirs.release(dir);
      }
    }
  }
}

/** Unpack the layer in `input` into the directory `target` (which must exist). */
export async function applyLayer(input: Readable, target: string, opts: ApplyOptions): Promise<ApplyResult> {
  const scope = Scope.open(target);
  const base = scope.root();
  try {
    return await applyLayerAt(input, scope, base, opts);
  } finally {
    closeSync(base.fd);
    scope.close();
  }
}

/**
 * Unpack into `base`, a directory of `scope` (a container's filesystem for `pier cp`): entries land
 * below `base`; symlinks on their way are resolved inside the scope, never on the host.
 */
export async function applyLayerAt(input: Readable, scope: Scope, base: Dir, opts: ApplyOptions): Promise<ApplyResult> {
  const ap = new Applier(scope, base, opts.format);
  try {
    return await run(ap, input, opts);
  } finally {
    ap.dirs.close();
  }
}

async function run(ap: Applier, input: Readable, opts: ApplyOptions): Promise<ApplyResult> {
  const diffId = await readTar(input, 'layer', (header, body) => { ap.entries++; return ap.handle(header, body); }, { digest: opts.format !== 'plain' }).catch(async (err: unknown) => {
    // Let writes already in flight settle, so nothing touches the target after we report.
    await Promise.allSettled([...ap.inflight.values()]);
    throw err;
  });
  await ap.drain();
  ap.done();
  if (opts.diffId && opts.diffId !== diffId) {
    throw new PierError(`layer diffID mismatch: expected ${opts.diffId}, got ${diffId}`);
  }
  return { diffId, entries: ap.entries };
}
