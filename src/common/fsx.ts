/**
 * fsx: filesystem syscalls Node's fs lacks, from the pierfs N-API addon (native/addon/pierfs.c).
 * Found through $PIER_FSX, else next to the source tree or the bundled dist/*.mjs. Loaded on first use,
 * so code that never needs it runs without the addon.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PierError } from './errors.ts';

export interface PierFs {
  /** mknod(2); mode includes the type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
  mknod(path: string, mode: number, dev: number): void;
  mkfifo(path: string, mode: number): void;
  /** glibc's makedev(3) encoding of a device number. */
  makedev(major: number, minor: number): number;
  /** [major, minor] of a device number (stat's rdev). */
  devsplit(dev: number): [number, number];
  lsetxattr(path: string, name: string, value: Buffer, flags?: number): void;
  /** setxattr on an open fd (not O_PATH). */
  fsetxattr(fd: number, name: string, value: Buffer, flags?: number): void;
  /** The attribute's value, or null when the file has no such attribute. A number is an open fd (fgetxattr). */
  lgetxattr(path: string | number, name: string): Buffer | null;
  /** A number is an open fd (flistxattr). */
  llistxattr(path: string | number): string[];
  lremovexattr(path: string, name: string): void;
  /** lchown (uid < 0 skips), chmod (mode < 0 skips; never for symlinks), then atime = mtime, never following symlinks. */
  lsetmeta(path: string, uid: number, gid: number, mode: number, mtimeSec: number, mtimeNsec: number): void;
  /**
   * The same on an open fd (O_PATH too; mtimeSec < 0 skips the times): nothing is looked up again.
   * A symlink's fd is refused with ELOOP.
   */
  fsetmeta(fd: number, uid: number, gid: number, mode: number, mtimeSec: number, mtimeNsec: number): void;
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
  /**
   * sendfile(2) of `length` bytes of `fileFd` from `offset` to the (non-blocking) socket `socketFd`,
   * in a thread of the addon's own, waiting for POLLOUT when the socket is full. Both fds are dup'ed,
   * so the caller may close its own. `done` runs on the JS thread with null after all bytes went
   * out, else an errno error (ECANCELED after `transferCancel`, ETIMEDOUT when the socket took
   * nothing for `idleTimeoutMs`, EIO when the file ended early), and the bytes sent either way.
   * Optional: absent from addons built before it.
   */
  sendfile?(socketFd: number, fileFd: number, offset: number, length: number, idleTimeoutMs: number, done: (err: NodeJS.ErrnoException | null, sent: number) => void): TransferHandle;
  /**
   * Read exactly `length` bytes off the (non-blocking) socket `socketFd` in a thread of the addon's
   * own and append them to `fileFd` (open for appending), advancing `sha256` (a `sha256New` state,
   * not to be touched until `done`) as they come; every `writebackEvery` bytes (0: never) start
   * writeback with sync_file_range. `done` gets null after all bytes, else an errno error
   * (ECONNRESET: the peer closed early; ECANCELED, ETIMEDOUT as for `sendfile`), and the bytes moved.
   */
  recvToFile?(socketFd: number, fileFd: number, length: number, sha256: Buffer | null, writebackEvery: number, idleTimeoutMs: number, done: (err: NodeJS.ErrnoException | null, received: number) => void): TransferHandle;
  /**
   * Read exactly `length` bytes off the (non-blocking) socket into `buffer[offset…]` in a thread of
   * the addon's own (the buffer is not to be touched until `done`); errors as for `recvToFile`.
   */
  recvInto?(socketFd: number, buffer: Buffer, offset: number, length: number, idleTimeoutMs: number, done: (err: NodeJS.ErrnoException | null, received: number) => void): TransferHandle;
  /** Stop a `sendfile`, `recvToFile` or `recvInto` transfer (its `done` then gets ECANCELED); a no-op once `done` has run. */
  transferCancel?(handle: TransferHandle): void;
  /** A new sha256 state: OpenSSL's SHA256_CTX in a Buffer (plain bytes: a copy is a copy of the state). */
  sha256New?(): Buffer;
  sha256Update?(state: Buffer, data: Uint8Array): void;
  /** Hex digest of the bytes hashed so far; the state stays usable. */
  sha256Hex?(state: Buffer): string;
  /**
   * sync_file_range(2) in libuv's pool; with `SYNC_FILE_RANGE_WRITE` it starts writeback of the
   * range without waiting for it (a later fsync then has less to do). Optional, like `sendfile`.
   */
  syncFileRange?(fd: number, offset: number, nbytes: number, flags: number, done: (err: NodeJS.ErrnoException | null) => void): void;
}

export const SYNC_FILE_RANGE_WRITE = 2;

/** An in-flight `sendfile`, `recvToFile` or `recvInto` transfer. */
export type TransferHandle = { readonly __transfer: unique symbol };

export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_BIND = 4096;
export const MS_REMOUNT = 32;
export const MNT_DETACH = 2;
export const XATTR_CREATE = 1;

let loaded: PierFs | undefined;

function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const out: string[] = [];
  if (process.env.PIER_FSX) out.push(process.env.PIER_FSX);
  out.push(join(here, '..', 'native', 'build', 'pierfs.node'), join(here, '..', '..', 'native', 'build', 'pierfs.node'));
  return out;
}

/** The addon; throws a PierError saying how to build it when it is missing. */
export function fsx(): PierFs {
  if (loaded) return loaded;
  const tried = candidates();
  const found = process.env.PIER_FSX ? tried[0] : tried.find((p) => existsSync(p));
  if (!found || !existsSync(found)) {
    throw new PierError(`the pierfs addon is missing (looked for ${tried.join(', ')}); run scripts/setup`);
  }
  const require = createRequire(import.meta.url);
  try {
    loaded = require(found) as PierFs;
  } catch (err) {
    throw new PierError(`cannot load the pierfs addon ${found}: ${(err as Error).message}; run scripts/setup`, { cause: err });
  }
  return loaded;
}
