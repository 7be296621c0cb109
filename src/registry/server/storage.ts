/**
 * The registry's storage driver: a small key/path interface the registry logic is written against.
 * Paths are `/`-separated and relative to the driver's root. `FilesystemDriver` is the default.
 *
 * Crash-safety contract: `putFile` and `moveIn` make content visible by an atomic rename; nothing
 * else creates a file under a final name.
 */
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, utimes, rmdir } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { errnoOf, PierError } from '../../common/errors.ts';

/** Read and write buffer for blob streams: big enough that a GB-sized blob is a few thousand syscalls. */
export const STREAM_CHUNK = 1 << 20;

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
  /** write a whole file atomically (temp + rename), creating parents */
  putFile(path: string, data: string | Uint8Array): Promise<void>;
  /** append a stream to a file (created if absent); returns the bytes written */
  append(path: string, body: AsyncIterable<Uint8Array>, onChunk?: (b: Uint8Array) => void): Promise<number>;
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

  async putFile(p: string, data: string | Uint8Array): Promise<void> {
    const a = this.abs(p);
    await mkdir(dirname(a), { recursive: true });
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

  async append(p: string, body: AsyncIterable<Uint8Array>, onChunk?: (b: Uint8Array) => void): Promise<number> {
    const a = this.abs(p);
    await mkdir(dirname(a), { recursive: true });
    let n = 0;
    const out = createWriteStream(a, { flags: 'a', highWaterMark: STREAM_CHUNK });
    await pipeline(body, async function* (src: AsyncIterable<Uint8Array>) {
      for await (const chunk of src) {
        n += chunk.length;
        onChunk?.(chunk);
        yield chunk;
      }
    }, out);
    return n;
  }

  async moveIn(from: string, to: string): Promise<void> {
    const a = this.abs(to);
    await mkdir(dirname(a), { recursive: true });
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
