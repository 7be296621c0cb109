/**
 * The content store: blobs by digest under `blobs/<algorithm>/<hex>` of an OCI image layout.
 * A write streams into `ingest/<random>` while hashing, fsyncs, checks digest and size, and only
 * then renames into place, so a blob path only ever holds verified content. Concurrent writers of
 * the same blob are harmless: each verifies its own temp file and rename(2) is atomic.
 */
import { createReadStream, readFileSync, existsSync, mkdirSync, readdirSync, statSync, unlinkSync, utimesSync, appendFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { open, readFile, unlink, rename, constants, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PierError, errnoOf } from '../../common/errors.ts';
import { newHash, parseDigest, type DigestAlgorithm } from '../../common/digest.ts';
import { onInterrupt } from '../../common/interrupt.ts';
import { writeFileAtomic } from '../../common/atomic.ts';
import { pidAlive } from './lock.ts';

export interface BlobInfo {
  digest: string;
  size: number;
}

export interface WriteResult extends BlobInfo {
  /** true when the blob was already in the store (nothing was written) */
  existed: boolean;
}

export interface Expected {
  digest?: string;
  size?: number;
}

/** See ContentStore.ingest. */
export interface Ingest {
  /** the temp file, open for appending */
  readonly fd: number;
  commit(digest: string, size: number): Promise<WriteResult>;
  abort(): Promise<void>;
}

export type BlobSource = Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

/**
 * A lease keeps the blobs of an operation in flight (an import that has written blobs but not yet
 * tagged them) safe from a concurrent garbage collection. It is a file of digests named by pid, so
 * a crashed owner's lease is ignored and removed.
 */
export class Lease {
  readonly path: string;
  private readonly forget: () => void;
  constructor(path: string) {
    this.path = path;
    writeFileAtomic(path, '');
    this.forget = onInterrupt(() => this.release());
  }
  add(digest: string): void {
    appendFileSync(this.path, digest + '\n');
  }
  release(): void {
    this.forget();
    try { unlinkSync(this.path); } catch { /* gone */ }
  }
}

export const OCI_LAYOUT = JSON.stringify({ imageLayoutVersion: '1.0.0' });

export class ContentStore {
  /** the OCI layout directory ($PIER_ROOT/images) */
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  get ingestDir(): string { return join(this.root, 'ingest'); }
  get leaseDir(): string { return join(this.root, 'leases'); }

  /**
   * Create the layout's skeleton if missing (idempotent). Every dir is 0700 (each level mkdir makes,
   * $PIER_ROOT included): blobs are images' content, readable by no one but root (see
   * src/common/statedir.ts).
   */
  init(): void {
    mkdirSync(join(this.root, 'blobs', 'sha256'), { recursive: true, mode: 0o700 });
    mkdirSync(this.ingestDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.leaseDir, { recursive: true, mode: 0o700 });
    const layout = join(this.root, 'oci-layout');
    if (!existsSync(layout)) writeFileAtomic(layout, OCI_LAYOUT, { fsync: true });
  }

  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, 'blobs', algorithm, hex);
  }

  has(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }

  info(digest: string): BlobInfo | undefined {
    try {
      return { digest, size: statSync(this.blobPath(digest)).size };
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  private missing(digest: string): PierError {
    return new PierError(`blob ${digest} not found in the image store`);
  }

  /** Whole blob in memory, checked against its digest (for manifests and configs). */
  async readBytes(digest: string, opts: { maxSize?: number } = {}): Promise<Buffer> {
    const path = this.blobPath(digest);
    const max = opts.maxSize ?? 16 << 20;
    let st;
    try { st = statSync(path); } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw this.missing(digest);
      throw err;
    }
    if (st.size > max) throw new PierError(`blob ${digest} is ${st.size} bytes, more than the ${max} allowed for a JSON object`);
    const data = await readFile(path);
    const { algorithm } = parseDigest(digest);
    const got = `${algorithm}:${newHash(algorithm).update(data).digest('hex')}`;
    if (got !== digest) throw new PierError(`blob ${digest} in the store is corrupt (its content hashes to ${got})`);
    return data;
  }

  readStream(digest: string): Readable {
    const path = this.blobPath(digest);
    if (!existsSync(path)) throw this.missing(digest);
    return createReadStream(path);
  }

  /** Re-hash a stored blob; false when its content no longer matches. */
  async verify(digest: string): Promise<boolean> {
    const { algorithm } = parseDigest(digest);
    const h = newHash(algorithm);
    for await (const chunk of this.readStream(digest)) h.update(chunk as Buffer);
    return `${algorithm}:${h.digest('hex')}` === digest;
  }

  newLease(): Lease {
    mkdirSync(this.leaseDir, { recursive: true, mode: 0o700 });
    return new Lease(join(this.leaseDir, `${process.pid}-${randomBytes(6).toString('hex')}`));
  }

  /** Digests held by live leases; leases of dead processes are removed. */
  leasedDigests(): Set<string> {
    const out = new Set<string>();
    let names: string[];
    try { names = readdirSync(this.leaseDir); } catch { return out; }
    for (const n of names) {
      const p = join(this.leaseDir, n);
      const pid = Number(n.split('-')[0]);
      if (!pidAlive(pid)) {
        try { unlinkSync(p); } catch { /* gone */ }
        continue;
      }
      let text = '';
      try { text = readFileSync(p, 'utf8'); } catch { /* released meanwhile */ }
      for (const line of text.split('\n')) if (line) out.add(line);
    }
    return out;
  }

  /**
   * Store content. With `expected.digest`, the content must hash to it (and have `expected.size`
   * bytes when given) or nothing is stored and a PierError says so. A blob already present is not
   * rewritten (a stream source is still read through and checked).
   */
  async write(source: BlobSource, expected: Expected = {}, lease?: Lease): Promise<WriteResult> {
    const algorithm: DigestAlgorithm = expected.digest ? parseDigest(expected.digest, 'expected digest').algorithm : 'sha256';
    if (expected.size !== undefined && (!Number.isSafeInteger(expected.size) || expected.size < 0)) {
      throw new PierError(`expected size must be a non-negative integer, not ${expected.size}`);
    }
    if (expected.digest) lease?.add(expected.digest);
    const present = expected.digest !== undefined && this.has(expected.digest);
    const chunks: AsyncIterable<Uint8Array> = typeof source === 'string' || source instanceof Uint8Array
      ? Readable.from([Buffer.from(source)])
      : source;
    const h = newHash(algorithm);
    let size = 0;
    let tmp: string | undefined;
    let fh: FileHandle | undefined;
    let out: BatchedWriter | undefined;
    let forget: (() => void) | undefined;
    try {
      if (!present) {
        mkdirSync(this.ingestDir, { recursive: true, mode: 0o700 });
        tmp = join(this.ingestDir, randomBytes(12).toString('hex'));
        forget = dropOnInterrupt(tmp); // before the open: a signal during it still finds the file
        fh = await open(tmp, 'wx', 0o644);
        out = new BatchedWriter(fh);
      }
      for await (const c of chunks) {
        const b = typeof c === 'string' ? Buffer.from(c) : c;
        h.update(b);
        size += b.length;
        if (expected.size !== undefined && size > expected.size) {
          throw new PierError(`blob ${expected.digest ?? '(content)'} is larger than its declared size ${expected.size}`);
        }
        if (out) await out.add(b);
      }
      await out?.end();
      const digest = `${algorithm}:${h.digest('hex')}`;
      if (expected.digest !== undefined && digest !== expected.digest) {
        throw new PierError(`blob ${expected.digest} does not match its content (got ${digest})`);
      }
      if (expected.size !== undefined && size !== expected.size) {
        throw new PierError(`blob ${digest} has ${size} bytes, not the declared ${expected.size}`);
      }
      if (!fh || !tmp) {
        this.touch(digest);
        return { digest, size, existed: true };
      }
      const done = await this.commitTemp(fh, tmp, digest, algorithm, expected.digest === undefined ? lease : undefined);
      fh = undefined;
      tmp = undefined;
      return { digest, size, existed: done };
    } finally {
      await out?.settle();
      if (fh) await fh.close().catch(() => {});
      if (tmp) await unlink(tmp).catch(() => {});
      forget?.();
    }
  }

  /**
   * fsync and close a verified temp file and rename it into place (or drop it when the blob
   * appeared meanwhile). Returns whether the blob already existed. The handle and temp file are the
   * store's from here on, whatever happens.
   */
  private async commitTemp(fh: FileHandle, tmp: string, digest: string, algorithm: DigestAlgorithm, lease?: Lease): Promise<boolean> {
    let open: FileHandle | undefined = fh;
    let left: string | undefined = tmp;
    try {
      await fh.sync();
      await fh.close();
      open = undefined;
      lease?.add(digest);
      const dest = this.blobPath(digest);
      if (existsSync(dest)) {
        this.touch(digest);
        return true;
      }
      mkdirSync(join(this.root, 'blobs', algorithm), { recursive: true, mode: 0o700 });
      await rename(tmp, dest);
      left = undefined;
      syncDir(join(this.root, 'blobs', algorithm));
      return false;
    } finally {
      if (open) await open.close().catch(() => {});
      if (left) await unlink(left).catch(() => {});
    }
  }

  /**
   * A blob written by someone else — the registry client's addon thread, which hashes as it writes:
   * an empty temp file (open for appending) in `ingest/`. `commit` takes the digest and size the
   * writer computed, checks them against `expected` and renames the file into place; `abort` drops
   * it. Exactly one of them must be called.
   */
  async ingest(expected: Required<Expected>, lease?: Lease): Promise<Ingest> {
    const { algorithm } = parseDigest(expected.digest, 'expected digest');
    lease?.add(expected.digest);
    mkdirSync(this.ingestDir, { recursive: true, mode: 0o700 });
    const tmp = join(this.ingestDir, randomBytes(12).toString('hex'));
    const forget = dropOnInterrupt(tmp); // before the open: a signal during it still finds the file
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND, 0o644).catch((err: unknown) => { forget(); throw err; });
    let over = false;
    const end = () => {
      if (over) throw new PierError(`ingest of ${expected.digest} already committed or aborted`);
      over = true;
    };
    return {
      fd: fh.fd,
      commit: async (digest: string, size: number) => {
        end();
        try {
          if (digest !== expected.digest || size !== expected.size) {
            await fh.close().catch(() => {});
            await unlink(tmp).catch(() => {});
            if (digest !== expected.digest) throw new PierError(`blob ${expected.digest} does not match its content (got ${digest})`);
            throw new PierError(`blob ${digest} has ${size} bytes, not the declared ${expected.size}`);
          }
          const existed = await this.commitTemp(fh, tmp, digest, algorithm);
          return { digest, size, existed };
        } finally {
          forget(); // (after the rename: an interrupt during the fsync still drops the temp file)
        }
      },
      abort: async () => {
        if (over) return;
        over = true;
        forget();
        await fh.close().catch(() => {});
        await unlink(tmp).catch(() => {});
      },
    };
  }

  /** Store a file's content (skipped without reading when the expected digest is already present). */
  async writeFile(path: string, expected: Expected = {}, lease?: Lease): Promise<WriteResult> {
    if (expected.digest && this.has(expected.digest)) {
      lease?.add(expected.digest);
      this.touch(expected.digest);
      return { digest: expected.digest, size: this.info(expected.digest)!.size, existed: true };
    }
    return this.write(createReadStream(path), expected, lease);
  }

  /** Bump a reused blob's mtime, so age-based tools see it as recently wanted. */
  private touch(digest: string): void {
    const now = new Date();
    try { utimesSync(this.blobPath(digest), now, now); } catch { /* removed meanwhile: callers re-check under the index lock */ }
  }

  delete(digest: string): boolean {
    try {
      unlinkSync(this.blobPath(digest));
      return true;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Every stored blob with its size. */
  list(): BlobInfo[] {
    const out: BlobInfo[] = [];
    for (const algorithm of ['sha256', 'sha512']) {
      const dir = join(this.root, 'blobs', algorithm);
      let names: string[];
      try { names = readdirSync(dir); } catch { continue; }
      for (const hex of names) {
        const digest = `${algorithm}:${hex}`;
        try { parseDigest(digest); } catch { continue; }
        try { out.push({ digest, size: statSync(join(dir, hex)).size }); } catch { /* deleted meanwhile */ }
      }
    }
    return out;
  }
}

/** fsync a directory so a rename into it survives a crash. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch { /* some filesystems refuse fsync on directories; the rename is still atomic */ } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes a stream's chunks to a file in 1 MiB batches, one write in flight while the next batch
 * fills: a TLS or gzip stream yields 16–64 KiB chunks, and one awaited thread-pool write per
 * chunk set the pace of a pull over HTTPS (193 MB/s for 4 × 128 MiB layers, before).
 */
/** An ingest temp file goes if the command is interrupted while it is being written (common/interrupt.ts). */
function dropOnInterrupt(tmp: string): () => void {
  return onInterrupt(() => { try { unlinkSync(tmp); } catch { /* renamed or gone */ } });
}

class BatchedWriter {
  private static readonly BATCH = 1 << 20;
  private fill: Buffer | undefined;
  private used = 0;
  private spare: Buffer | undefined;
  private inFlight: Promise<void> | undefined;
  private failed: unknown;
  private readonly fh: FileHandle;

  constructor(fh: FileHandle) {
    this.fh = fh;
  }

  async add(b: Uint8Array): Promise<void> {
    if (b.length >= BatchedWriter.BATCH) {
      // big enough to go as it is (after what came before it)
      await this.flush();
      await this.settle(true);
      await this.writeAll(b);
      return;
    }
    if (this.fill && this.used + b.length > this.fill.length) await this.flush();
    if (!this.fill) {
      this.fill = this.spare ?? Buffer.allocUnsafe(BatchedWriter.BATCH);
      this.spare = undefined;
    }
    this.fill.set(b, this.used);
    this.used += b.length;
  }

  /** Everything written; throws the first write error. */
  async end(): Promise<void> {
    await this.flush();
    await this.settle(true);
  }

  /** Wait for the write in flight; with `rethrow`, surface its error. */
  async settle(rethrow = false): Promise<void> {
    await this.inFlight;
    this.inFlight = undefined;
    if (rethrow && this.failed !== undefined) throw this.failed;
  }

  /** Hand the filled batch to a write, once the previous one is done (its buffer becomes the spare). */
  private async flush(): Promise<void> {
    if (!this.fill || this.used === 0) return;
    const buf = this.fill;
    const n = this.used;
    this.fill = undefined;
    this.used = 0;
    await this.settle(true);
    this.inFlight = this.writeAll(buf.subarray(0, n)).then(() => { this.spare = buf; }, (err: unknown) => { this.failed = err; });
  }

  private async writeAll(b: Uint8Array): Promise<void> {
    let off = 0;
    while (off < b.length) off += (await this.fh.write(b, off, b.length - off)).bytesWritten;
  }
}
