/**
 * fd-anchored access to trees whose contents the build does not control: the build context, the
 * root filesystem of a stage or image (`COPY --from`, `FROM`), a RUN's upper dir, and the COPY tree
 * being assembled from them. Every lookup goes one component at a time from an open directory fd,
 * as `/proc/self/fd/<dirfd>/<name>` with lstat, readlink, and open with O_NOFOLLOW — the kernel
 * resolves the magic link to the very directory the fd holds and then looks up one name in it,
 * which is what the *at() calls do. A symlink is followed only where the caller asks, and then the
 * way the tree's own processes would see it: an absolute target from the tree's root, `..` never
 * above it (openat2's RESOLVE_IN_ROOT). No path from a tree is ever joined onto a host path and
 * opened, so a symlink to `/etc` in a context or a stage reads or writes nothing of the host's.
 */
import { closeSync, constants, fstatSync, mkdirSync, openSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { PierError, errnoOf } from '../../common/errors.ts';
import { Scope, at, lstatAt, openHostDir, procFd, type Resolved, type ResolveFailure } from '../../common/rooted.ts';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants;
/** O_NONBLOCK: a FIFO swapped in after the lstat must not hang the build. */
const FILE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

/** The one-name and fd primitives are the shared ones (common/rooted.ts); what is here is the build's walk. */
export { at, lstatAt, openDirAt, procFd as fdPath } from '../../common/rooted.ts';

/** Open a tree's root: a host path the build chose (the context it was given, a mount it made). */
export function openRoot(path: string): number {
  return openHostDir(path);
}

/** A regular file in `dirFd`, opened without following a symlink, and its fstat. */
export function openFileAt(dirFd: number, name: string): { fd: number; st: Stats } {
  const fd = openSync(at(dirFd, name), FILE_FLAGS);
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new PierError(`${name}: not a regular file any more (it changed during the build)`);
  }
  return { fd, st };
}

export function readlinkAt(dirFd: number, name: string): string {
  return readlinkSync(at(dirFd, name));
}

/** The names in an open directory, sorted (so hashes and layers do not depend on readdir order). */
export function namesOf(dirFd: number): string[] {
  return readdirSync(procFd(dirFd)).sort();
}

/** Where a path led: `name` in the directory `dir` (an fd the caller closes), and its lstat. */
export interface Entry {
  dir: number;
  /** one component, or "." when the path led to a directory reached through ".." or a link (or to the root) */
  name: string;
  st: Stats;
}

export type ResolveCode = 'ENOENT' | 'ENOTDIR' | 'ELOOP';

/** A path that does not resolve inside its tree. */
export class ResolveError extends PierError {
  readonly code: ResolveCode;
  /** a symlink on the way pointed out of the tree (an absolute target, or `..` above its root) */
  readonly escaped: boolean;
  /** where, inside the tree, resolution failed ("/etc" for a link to /etc that the tree lacks) */
  readonly at: string;
  constructor(code: ResolveCode, escaped: boolean, where: string) {
    super(`${where}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'ENOTDIR' ? 'not a directory' : 'too many levels of symbolic links'}`);
    this.code = code;
    this.escaped = escaped;
    this.at = where;
  }
}

export interface WalkOptions {
  /** follow a symlink that is the last component (in the tree) */
  followLast: boolean;
  /** follow symlinks before the last component (in the tree); if not, such a path is ENOTDIR */
  followInner: boolean;
  /** make missing directories on the way with this mode (mkdir -p inside the tree) */
  create?: number;
}

/**
 * Resolve `path` inside the tree open as `root` (the shared walk of common/rooted.ts: one
 * component at a time, an absolute link target restarting at `root`, `..` stopping at it). The
 * result's `dir` is a new fd. With `create`, every missing directory is made, the last one too.
 */
export function walkAt(root: number, path: string, opts: WalkOptions): Entry {
  const scope = new Scope(root); // borrows `root`: nothing to close
  let r: Resolved;
  try {
    r = scope.resolve(path, { followLast: opts.followLast, followInner: opts.followInner, create: opts.create !== undefined, createMode: opts.create });
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') throw new ResolveError(code, (err as ResolveFailure).escaped, (err as NodeJS.ErrnoException).path ?? path);
    throw err;
  }
  // The path led to a directory itself (the root, a link to one, a trailing `..`).
  if (r.name === '') return { dir: r.dir.fd, name: '.', st: fstatSync(r.dir.fd) };
  let st = lstatAt(r.dir.fd, r.name);
  if (!st && opts.create !== undefined) {
    try { mkdirSync(at(r.dir.fd, r.name), opts.create); } catch (err) { if (errnoOf(err) !== 'EEXIST') { closeSync(r.dir.fd); throw err; } }
    st = lstatAt(r.dir.fd, r.name);
  }
  if (!st) {
    closeSync(r.dir.fd);
    throw new ResolveError('ENOENT', r.escaped, r.dir.path === '/' ? `/${r.name}` : `${r.dir.path}/${r.name}`);
  }
  return { dir: r.dir.fd, name: r.name, st };
}

/** walkAt, or undefined when the path does not resolve (any ResolveError). */
export function tryWalkAt(root: number, path: string, opts: WalkOptions): Entry | undefined {
  try {
    return walkAt(root, path, opts);
  } catch (err) {
    if (err instanceof ResolveError) return undefined;
    throw err;
  }
}

/** Run `fn` on an Entry, closing its directory fd afterwards. */
export function withEntry<T>(e: Entry, fn: (e: Entry) => T): T {
  try {
    return fn(e);
  } finally {
    closeSync(e.dir);
  }
}

/** Run `fn` with a directory fd, closing it afterwards. */
export function withFd<T>(fd: number, fn: (fd: number) => T): T {
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}
