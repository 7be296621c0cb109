/**
 * The registry's storage driver: a small key/path interface the registry logic is written against.
 * Paths are `/`-separated and relative to the driver's root. `FilesystemDriver` is the default.
 *
 * Crash-safety contract: `putFile` and `moveIn` make content visible by an atomic rename; nothing
 * else creates a file under a final name.
 */
import { createReadStream, type Stats } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, utimes, rmdir, type FileHandle } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { errnoOf, PierError } from '../../common/errors.ts';
import { fsx, SYNC_FILE_RANGE_WRITE, type PierFs } from '../../common/fsx.ts';
import { receiveRest, type SocketBody } from './native-io.ts';
import type { Sha256 } from './sha256.ts';

/** Read and write buffer for blob streams: big enough that a GB-sized blob is a few thousand syscalls. */
export const STREAM_CHUNK = 1 << 20;

/** Bytes of a request body gathered (while a write is in flight) before the body is made to wait. */
const APPEND_BACKLOG = 8 << 20;
/** writev(2) takes at most IOV_MAX (1024) buffers. */
const IOV_MAX = 1024;

/** Write all of bufs at the file's end (it is open for appending), however the kernel splits it. */
async function writevAll(fh: FileHandle, bufs: Uint8Array[]): Promise<number> {
  let total = 0;
  for (const b of bufs) total += b.length;
  let i = 0;
  while (i < bufs.length) {
    const batch = bufs.slice(i, i + IOV_MAX);
    const want = batch.reduce((s, b) => s + b.length, 0);
    let { bytesWritten } = await fh.writev(batch);
    if (bytesWritten === want) { i += batch.length; continue; }
    // a short write: skip what went out and carry on with the rest
    while (bytesWritten > 0) {
      const b = bufs[i];
      if (bytesWritten >= b.length) { bytesWritten -= b.length; i++; } else { bufs[i] = b.subarray(bytesWritten); bytesWritten = 0; }
    }
  }
  return total;
}

/** Start writeback every this many bytes appended, so the fsync before a blob goes live is short. */
const WRITEBACK_EVERY = 8 << 20;

/**
 * Early writeback of a file being appended to (from `start`): every WRITEBACK_EVERY bytes,
 * sync_file_range(SYNC_FILE_RANGE_WRITE) from the addon starts the disk on what was written without
 * waiting for it. Only a head start for the fsync that follows; `settled()` must be awaited before
 * the fd is closed. A no-op without the addon.
 */
function writeback(fd: number, start: number): { wrote(n: number): void; settled(): Promise<void> } {
  let sfr: PierFs['syncFileRange'];
  if (process.env.PIER_REGISTRY_NATIVE_IO !== '0') {
    try { sfr = fsx().syncFileRange; } catch { /* no addon */ }
  }
  let end = start;
  let kicked = start;
  const running = new Set<Promise<void>>();
  return {
    wrote(n: number) {
      end += n;
      if (!sfr || end - kicked < WRITEBACK_EVERY) return;
      const off = kicked;
      kicked = end;
      const p = new Promise<void>((resolve) => {
        try { sfr(fd, off, end - off, SYNC_FILE_RANGE_WRITE, () => resolve()); } catch { resolve(); }
      });
      running.add(p);
      void p.then(() => running.delete(p));
    },
    async settled() {
      while (running.size) await Promise.all(running);
    },
  };
}

export interface FileInfo {
  size: number;
  mtimeMs: number;
  isDir: boolean;
}

export interface StorageDriver {
  /** size and mtime, or undefined when absent */
  stat(path: string): Promise<FileInfo | undefined>;
  /** whole small file, or undefined when absent */
  read(path: string): Promise<Buffer | undefined>;
  /** a stream of bytes [start, end] inclusive (all when omitted) */
  reader(path: string, range?: { start: number; end: number }): Readable;
  /**
   * Optional: the file opened for reading (undefined when absent), for drivers backed by local
   * files, so the server can send it with sendfile(2).
   */
  open?(path: string): Promise<FileHandle | undefined>;
  /** write a whole file atomically (temp + rename), creating parents */
  putFile(path: string, data: string | Uint8Array): Promise<void>;
  /** append a stream to a file (created if absent); returns the bytes written */
  append(path: string, body: AsyncIterable<Uint8Array>, onChunk?: (b: Uint8Array) => void): Promise<number>;
  /**
   * Optional: append a request body the addon reads straight off the connection (see
   * native-io.ts), advancing `hash` (an addon sha256 state) as it goes; returns the bytes written.
   */
  appendFromSocket?(path: string, body: SocketBody, hash?: Sha256): Promise<number>;
  /** atomically move a file to a final path (creating parents), refreshing its mtime */
  moveIn(from: string, to: string): Promise<void>;
  /** names directly under a directory ([] when absent) */
  list(dir: string): Promise<string[]>;
  /** cut a file down to size bytes */
  truncate(path: string, size: number): Promise<void>;
  /** remove a file or a directory tree (no error when absent) */
  delete(path: string): Promise<void>;
  /** remove empty directories from `path` up to (not including) `stopAt` */
  pruneEmpty(path: string, stopAt: string): Promise<void>;
}

export class FilesystemDriver implements StorageDriver {
  readonly root: string;
  constructor(root: string) {
    this.root = resolve(root);
  }

  private abs(p: string): string {
    const a = resolve(this.root, p);
    if (a !== this.root && !a.startsWith(this.root + sep)) throw new PierError(`registry storage: path ${JSON.stringify(p)} escapes the storage root`);
    return a;
  }

  async stat(p: string): Promise<FileInfo | undefined> {
    let s: Stats;
    try { s = await stat(this.abs(p)); } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    return { size: s.size, mtimeMs: s.mtimeMs, isDir: s.isDirectory() };
  }

  async read(p: string): Promise<Buffer | undefined> {
    try { return await readFile(this.abs(p)); } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR' || errnoOf(err) === 'EISDIR') return undefined;
      throw err;
    }
  }

  reader(p: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.abs(p), range ? { start: range.start, end: range.end, highWaterMark: STREAM_CHUNK } : { highWaterMark: STREAM_CHUNK });
  }

  async open(p: string): Promise<FileHandle | undefined> {
    try { return await open(this.abs(p), 'r'); } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async putFile(p: string, data: string | Uint8Array): Promise<void> {
    const a = this.abs(p);
    await mkdir(dirname(a), { recursive: true, mode: 0o700 });
    const tmp = `${a}.${randomBytes(6).toString('hex')}.tmp`;
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try { await rename(tmp, a); } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async appendFromSocket(p: string, body: SocketBody, hash?: Sha256): Promise<number> {
    if (hash && !hash.state) throw new PierError('registry storage: a socket body needs the addon\'s sha256 state');
    const a = this.abs(p);
    await mkdir(dirname(a), { recursive: true, mode: 0o700 });
    const fh = await open(a, 'a');
    try {
      let n = 0;
      for (const b of body.head) { hash?.update(b); n += b.length; }
      if (body.head.length) await writevAll(fh, body.head);
      return n + await receiveRest(body, fh.fd, hash?.state ?? null, WRITEBACK_EVERY);
    } finally {
      await fh.close();
    }
  }

  /**
   * Chunks go to the file as they come, with no copy: while one write is in flight the next chunks
   * gather, and go out together in one writev when it is done; past APPEND_BACKLOG bytes gathered,
   * the body waits (backpressure). Every WRITEBACK_EVERY bytes, writeback starts (see `writeback`).
   */
  async append(p: string, body: AsyncIterable<Uint8Array>, onChunk?: (b: Uint8Array) => void): Promise<number> {
    const a = this.abs(p);
    await mkdir(dirname(a), { recursive: true, mode: 0o700 });
    const fh = await open(a, 'a');
    let n = 0;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let inflight: Promise<void> | undefined;
    let failure: unknown;
    let wb: ReturnType<typeof writeback> | undefined;
    const flush = async (): Promise<void> => {
      try {
        while (pending.length && !failure) {
          const bufs = pending;
          pending = [];
          pendingBytes = 0;
          wb!.wrote(await writevAll(fh, bufs));
        }
      } catch (err) {
        failure ??= err;
      } finally {
        inflight = undefined;
      }
    };
    try {
      wb = writeback(fh.fd, (await fh.stat()).size);
      for await (const chunk of body) {
        n += chunk.length;
        onChunk?.(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (!inflight) inflight = flush();
        else if (pendingBytes >= APPEND_BACKLOG) await inflight;
        if (failure) throw failure;
      }
      while (inflight) await inflight;
      if (pending.length) await flush();
      if (failure) throw failure;
      return n;
    } finally {
      while (inflight) await inflight;
      await wb?.settled();
      await fh.close();
    }
  }

  async moveIn(from: string, to: string): Promise<void> {
    const a = this.abs(to);
    await mkdir(dirname(a), { recursive: true, mode: 0o700 });
    const fh = await open(this.abs(from), 'r');
    try { await fh.sync(); } finally { await fh.close(); }
    const now = new Date();
    await utimes(this.abs(from), now, now);
    await rename(this.abs(from), a);
  }

  async list(dir: string): Promise<string[]> {
    try { return (await readdir(this.abs(dir))).filter((n) => !n.endsWith('.tmp')); } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return [];
      throw err;
    }
  }

  async truncate(p: string, size: number): Promise<void> {
    await truncate(this.abs(p), size);
  }

  async delete(p: string): Promise<void> {
    await rm(this.abs(p), { recursive: true, force: true });
  }

  async pruneEmpty(p: string, stopAt: string): Promise<void> {
    let cur = this.abs(p);
    const stop = this.abs(stopAt);
    while (cur !== stop && cur.startsWith(stop + sep)) {
      try { await rmdir(cur); } catch { return; }
      cur = dirname(cur);
    }
  }
}
