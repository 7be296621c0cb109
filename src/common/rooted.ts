/**
 * rooted: a directory tree that someone else controls (a container's filesystem, an image layer, a
 * build stage), reached only through file descriptors.
 *
 * Why: a path string resolved once and used later can be redirected by whoever controls the tree.
 * A container that swaps a directory for a symlink to `/` between pier's check and pier's use made
 * `docker cp`'s predecessor read and write the host (CVE-2018-15664; CVE-2021-30465 is the same race
 * against runc's mounts). Here every component is opened relative to its parent's fd with
 * O_NOFOLLOW, symlinks are read and resolved by us inside the scope (as a chroot would: an absolute
 * target restarts at the scope's root, `..` never leaves it), and what is finally used is an fd or a
 * (directory fd, single name) pair. The kernel never walks a container-controlled path from the
 * host's root.
 *
 * A (dirfd, name) pair is handed to Node's path-based calls as `/proc/self/fd/<dirfd>/<name>`: the
 * kernel jumps straight to the directory the fd holds and looks up one name there, which is what
 * the *at(2) calls do. Only calls that do not follow a final symlink may be given such a path
 * (lstat, readlink, unlink, rmdir, mkdir, symlink, link, mknod, l*xattr, open with O_NOFOLLOW).
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, readlinkSync, rmdirSync, unlinkSync, type Stats } from 'node:fs';
import { PierError, errnoOf } from './errors.ts';

/** open(2)'s O_PATH on Linux (Node does not export it): an fd that names an inode without opening it for I/O. */
export const O_PATH = 0o10000000;
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants;
const O_CLOEXEC = 0o2000000;
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
/** Symlinks followed while resolving one path, as Linux's own limit. */
const MAX_LINKS = 40;
/** A process's root as /proc shows it: the one link Scope.open follows (it is the kernel's, not a tree's). */
const PROC_ROOT = /^\/proc\/[1-9]\d*\/root$/;

/** The path Node's fs calls take for the fd itself. */
export function procFd(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** The path for `name` inside the directory `dirfd` holds (one component, no slash, not ..; '.' is the directory itself). */
export function at(dirfd: number, name: string): string {
  if (name === '' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new PierError(`internal: ${JSON.stringify(name)} is not a single path component`);
  }
  return `/proc/self/fd/${dirfd}/${name}`;
}

/** The directory `dirfd/name`, opened without following a symlink there (ELOOP / ENOTDIR otherwise). */
export function openDirAt(dirfd: number, name: string): number {
  return openSync(at(dirfd, name), DIR_FLAGS);
}

/** A fresh fd for the directory `fd` holds (the kernel's own link: no name is looked up). */
export function reopenDir(fd: number): number {
  // No O_NOFOLLOW: following the fd's own /proc link is the point (it names the inode, not a path).
  return openSync(procFd(fd), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/** A host directory pier itself chose (a rootfs mount point, a volume's dir): not container-controlled. */
export function openHostDir(path: string): number {
  return openSync(path, DIR_FLAGS);
}

/** lstat of `dirfd/name`, or undefined when there is nothing there. */
export function lstatAt(dirfd: number, name: string): Stats | undefined {
  // throwIfNoEntry: an unpack asks this of every new name; a thrown ENOENT costs more than the lstat.
  return lstatSync(at(dirfd, name), { throwIfNoEntry: false });
}

/** Remove `dirfd/name` and, if it is a directory, everything under it, walking by fds only. */
export function removeAt(dirfd: number, name: string): void {
  try {
    unlinkSync(at(dirfd, name));
    return;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT') return;
    if (code !== 'EISDIR' && code !== 'EPERM') throw err;
  }
  let fd: number;
  try {
    fd = openDirAt(dirfd, name);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return;
    throw err;
  }
  try {
    for (const child of readdirSync(procFd(fd))) removeAt(fd, child);
  } finally {
    closeSync(fd);
  }
  try {
    rmdirSync(at(dirfd, name));
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
}

/** A directory reached inside a scope: its fd (owned by whoever got it) and its path in the scope. */
export interface Dir {
  fd: number;
  /** Absolute path inside the scope ('/' for its root), as the walk went (symlinks resolved). */
  path: string;
}

/**
 * Another tree mounted at a path of the scope (a container's volumes and binds): a directory, or
 * (with `name`) the single file `name` in the directory `fd` holds.
 */
export interface ScopeMount {
  destination: string;
  fd: number;
  name?: string;
}

export interface ResolveOptions {
  /** Follow a symlink in the last component too (default: the last component is taken as it is). */
  followLast?: boolean;
  /** Follow symlinks before the last component (default); off, a link on the way is ENOTDIR. */
  followInner?: boolean;
  /** Make missing directories on the way, as an unpacker must. */
  create?: boolean;
  /** Their mode (default 0755). */
  createMode?: number;
  /** Start from this directory instead of the root (a relative `path` is taken from it). */
  base?: Dir;
}

/** The directory holding a path's last component, and that component ('' when the path is a directory's own root). */
export interface Resolved {
  dir: Dir;
  name: string;
  /** A symlink on the way pointed out of the scope (an absolute target, or `..` above its root). */
  escaped: boolean;
}

/** A resolution error: Node's shape (code, path: where in the scope it failed) and whether a link tried to leave. */
export type ResolveFailure = NodeJS.ErrnoException & { escaped: boolean };

/** Split a path into components, dropping empty and '.' ones ('..' is kept: the walk handles it). */
function components(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/**
 * A scope: a root directory fd and the trees mounted inside it, resolved as the kernel would inside
 * a chroot to that root. The scope owns its fds; close() releases them.
 */
export class Scope {
  readonly rootFd: number;
  private readonly mounts: Map<string, ScopeMount>;
  private readonly owned: number[];

  constructor(rootFd: number, mounts: ScopeMount[] = [], owned: number[] = []) {
    this.rootFd = rootFd;
    this.mounts = new Map(mounts.map((m) => [normalizeDest(m.destination), m]));
    this.owned = owned;
  }

  /** A scope over host paths pier chose itself (the root, and each mount's source). */
  static open(root: string, mounts: { destination: string; source: string; file?: boolean }[] = []): Scope {
    const owned: number[] = [];
    try {
      // /proc/<pid>/root is a process's root in its own mount namespace (openProcessRoot)
      const rootFd = PROC_ROOT.test(root) ? openSync(root, DIR_FLAGS & ~O_NOFOLLOW) : openHostDir(root);
      owned.push(rootFd);
      const ms: ScopeMount[] = [];
      for (const m of mounts) {
        if (m.file) {
          const slash = m.source.lastIndexOf('/');
          const fd = openHostDir(slash <= 0 ? '/' : m.source.slice(0, slash));
          owned.push(fd);
          ms.push({ destination: m.destination, fd, name: m.source.slice(slash + 1) });
        } else {
          const fd = openHostDir(m.source);
          owned.push(fd);
          ms.push({ destination: m.destination, fd });
        }
      }
      return new Scope(rootFd, ms, owned);
    } catch (err) {
      for (const fd of owned) closeSync(fd);
      throw err;
    }
  }

  /**
   * A scope over a running process's root: /proc/<pid>/root, the magic link into its own mount
   * namespace (a container whose rootfs and volumes are mounted only there). The link is followed
   * once, here, as the kernel hands it out; every name below it is walked by fds like any scope.
   */
  static openProcessRoot(pid: number): Scope {
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`bad pid ${pid}`);
    return Scope.open(`/proc/${pid}/root`);
  }

  close(): void {
    for (const fd of this.owned.splice(0)) {
      try { closeSync(fd); } catch { /* already closed */ }
    }
  }

  /** The root, as a fresh fd. */
  root(): Dir {
    return { fd: reopenDir(this.rootFd), path: '/' };
  }

  /** The mount (if any) whose destination is exactly `path`. */
  mountAt(path: string): ScopeMount | undefined {
    return this.mounts.size ? this.mounts.get(path) : undefined;
  }

  /** A fresh fd for the directory a mount puts at `path`, or undefined when none does (or it is a file). */
  openMount(path: string): Dir | undefined {
    const m = this.mountAt(path);
    if (!m || m.name !== undefined) return undefined;
    return { fd: reopenDir(m.fd), path };
  }

  /**
   * Resolve `path`. The returned dir's fd belongs to the caller (close it). Errors are Node's own
   * (ENOENT, ENOTDIR, ELOOP) with the scope path in the message.
   */
  resolve(path: string, opts: ResolveOptions = {}): Resolved {
    const stack: Dir[] = [];
    const closeAll = () => { for (const d of stack.splice(0)) closeSync(d.fd); };
    try {
      if (path.startsWith('/') || !opts.base) stack.push(this.root());
      else stack.push({ fd: reopenDir(opts.base.fd), path: opts.base.path });
      let todo = components(path);
      let links = 0;
      let escaped = false;
      const fail = (code: 'ENOENT' | 'ENOTDIR' | 'ELOOP', where: string): ResolveFailure => Object.assign(pathError(code, where), { escaped });
      while (todo.length) {
        const name = todo[0];
        const last = todo.length === 1;
        const top = stack[stack.length - 1];
        if (name === '..') {
          todo = todo.slice(1);
          if (stack.length > 1) closeSync(stack.pop()!.fd);
          else escaped = true;
          continue;
        }
        const here = join(top.path, name);
        const mount = this.mountAt(here);
        if (mount) {
          if (mount.name !== undefined) {
            // A bind-mounted file: only ever the last component.
            if (!last) throw fail('ENOTDIR', here);
            const dir: Dir = { fd: reopenDir(mount.fd), path: top.path };
            closeAll();
            return { dir, name: mount.name, escaped };
          }
          if (last) {
            const dir = { fd: reopenDir(mount.fd), path: here };
            closeAll();
            return { dir, name: '', escaped };
          }
          stack.push({ fd: reopenDir(mount.fd), path: here });
          todo = todo.slice(1);
          continue;
        }
        if (last && !opts.followLast) {
          const dir = stack.pop()!;
          closeAll();
          return { dir, name, escaped };
        }
        let fd: number | undefined;
        try {
          fd = openDirAt(top.fd, name);
        } catch (err) {
          const code = errnoOf(err);
          if (code === 'ENOENT' && opts.create && !last) {
            if (++links > MAX_LINKS) throw fail('ELOOP', here); // made and gone again, over and over
            try { mkdirSync(at(top.fd, name), { mode: opts.createMode ?? 0o755 }); } catch (e) { if (errnoOf(e) !== 'EEXIST') throw e; }
            continue; // open it (or follow what raced in) on the next turn
          }
          if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENOENT') {
            const st = lstatAt(top.fd, name);
            // Swapped for a directory since the open (a tree that changes under us): open it again.
            // Each retry counts as a link followed, so a swapper cannot keep us here forever.
            if (st?.isDirectory()) {
              if (++links > MAX_LINKS) throw fail('ELOOP', here);
              continue;
            }
            if (st?.isSymbolicLink()) {
              if (!last && opts.followInner === false) throw fail('ENOTDIR', here);
              if (++links > MAX_LINKS) throw fail('ELOOP', here);
              let target: string;
              try {
                target = readlinkSync(at(top.fd, name));
              } catch (e) {
                if (errnoOf(e) === 'EINVAL' || errnoOf(e) === 'ENOENT') continue; // swapped again: look again
                throw e;
              }
              if (target.startsWith('/')) {
                escaped = true;
                closeAll();
                stack.push(this.root());
              }
              todo = [...components(target), ...todo.slice(1)];
              continue;
            }
            if (last) {
              // Not a directory (or nothing there): the parent holds it.
              const dir = stack.pop()!;
              closeAll();
              return { dir, name, escaped };
            }
            throw fail(st ? 'ENOTDIR' : 'ENOENT', here);
          }
          throw err;
        }
        stack.push({ fd, path: here });
        todo = todo.slice(1);
        if (todo.length === 0) {
          // The path named a directory (its last component followed): it is its own holder.
          const dir = stack.pop()!;
          closeAll();
          return { dir, name: '', escaped };
        }
      }
      const dir = stack.pop()!;
      closeAll();
      return { dir, name: '', escaped };
    } catch (err) {
      closeAll();
      throw err;
    }
  }

  /**
   * Where `path` leads in the scope, as an absolute path of the scope: symlinks followed inside it,
   * components that do not exist kept as they are (a mount point the runtime will make).
   */
  realPath(path: string): string {
    try {
      const r = this.resolve(path, { followLast: true });
      closeSync(r.dir.fd);
      return r.name === '' ? r.dir.path : join(r.dir.path, r.name);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') throw err;
      const parts = components(path);
      const last = parts.pop();
      if (last === undefined) return '/';
      return join(this.realPath(`/${parts.join('/')}`), last);
    }
  }

  /** The directory at `path` (symlinks followed, inside the scope), made if missing when `create`. */
  openDir(path: string, opts: { create?: boolean; base?: Dir } = {}): Dir {
    const r = this.resolve(path, { followLast: true, create: opts.create, base: opts.base });
    if (r.name === '') return r.dir;
    try {
      if (opts.create) {
        try { mkdirSync(at(r.dir.fd, r.name), { mode: 0o755 }); } catch (e) { if (errnoOf(e) !== 'EEXIST') throw e; }
        // Whatever is there now (a racing symlink included) is resolved again, inside the scope.
        return this.openDir(r.name, { base: r.dir });
      }
      const st = lstatAt(r.dir.fd, r.name);
      throw pathError(st ? 'ENOTDIR' : 'ENOENT', join(r.dir.path, r.name));
    } finally {
      closeSync(r.dir.fd);
    }
  }
}

function normalizeDest(p: string): string {
  const parts: string[] = [];
  for (const c of components(p)) {
    if (c === '..') parts.pop();
    else parts.push(c);
  }
  return `/${parts.join('/')}`;
}

function pathError(code: 'ENOENT' | 'ENOTDIR' | 'ELOOP', path: string): NodeJS.ErrnoException {
  const text = code === 'ENOENT' ? 'no such file or directory' : code === 'ENOTDIR' ? 'not a directory' : 'too many levels of symbolic links';
  const err = new Error(`${code}: ${text}, '${path}'`) as NodeJS.ErrnoException;
  err.code = code;
  err.path = path;
  return err;
}

/** fstat of an fd (re-exported so callers that hold fds need not import node:fs for it). */
export function statFd(fd: number): Stats {
  return fstatSync(fd);
}

/**
 * The regular file at `path` in the scope (symlinks followed inside it), read whole, or undefined
 * when there is none. At most `limit` bytes: the file is the container's, its size is not ours to trust.
 */
export function readFileIn(scope: Scope, path: string, limit = 4 << 20): Buffer | undefined {
  let r: Resolved;
  try {
    r = scope.resolve(path, { followLast: true });
  } catch (err) {
    if (['ENOENT', 'ENOTDIR', 'ELOOP'].includes(errnoOf(err) ?? '')) return undefined;
    throw err;
  }
  try {
    if (r.name === '') return undefined;
    let fd: number;
    try {
      // O_NONBLOCK: a fifo planted under the name must not hang the reader.
      fd = openSync(at(r.dir.fd, r.name), O_RDONLY | O_NOFOLLOW | constants.O_NONBLOCK | O_CLOEXEC);
    } catch (err) {
      if (['ENOENT', 'ELOOP', 'ENXIO'].includes(errnoOf(err) ?? '')) return undefined;
      throw err;
    }
    try {
      if (!fstatSync(fd).isFile()) return undefined;
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        const buf = Buffer.allocUnsafe(Math.min(64 << 10, limit - total + 1));
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        total += n;
        if (total > limit) throw new PierError(`${path} in the container is larger than ${limit} bytes`);
        chunks.push(buf.subarray(0, n));
      }
      return Buffer.concat(chunks);
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(r.dir.fd);
  }
}
