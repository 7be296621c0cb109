/**
 * Tar plumbing for import/export: compression sniffing, scanning an archive's member names, and
 * ingesting an archive (oci-archive, docker save) without unpacking it to disk: blob members go
 * straight into the content store (verified against their names when those are digests), small
 * JSON members are kept in memory.
 */
import { createReadStream, openSync, readSync, closeSync } from 'node:fs';
import { posix } from 'node:path';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { PierError } from '../../common/errors.ts';
import { isDigest } from '../../common/digest.ts';
import type { BlobInfo, ContentStore, Lease } from '../store/content.ts';

export type Compression = 'gzip' | 'zstd' | 'none';

/** Compression from the first bytes of a stream. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

export function fileHead(path: string, n = 512): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Decompress `stream` as `compression` says (or pass it through). */
export function decompress(stream: Readable, compression: Compression): Readable {
  if (compression === 'gzip') return stream.pipe(createGunzip());
  if (compression === 'zstd') return stream.pipe(createZstdDecompress());
  return stream;
}

/** True when `head` (at least 512 bytes) looks like a ustar/gnu tar header. */
export function looksLikeTar(head: Uint8Array): boolean {
  if (head.length < 512) return false;
  const magic = Buffer.from(head.subarray(257, 263)).toString('latin1');
  return magic === 'ustar\0' || magic === 'ustar ';
}

/** A member name made relative and clean; '..' that would climb out is refused. */
export function cleanMemberName(name: string): string {
  const n = posix.normalize(name.replace(/^\/+/, '')).replace(/\/+$/, '');
  if (n === '..' || n.startsWith('../')) throw new PierError(`archive member ${JSON.stringify(name)} points outside the archive`);
  return n === '.' ? '' : n;
}

/**
 * The first member name (cleaned) for which `want` is true, reading as little of the archive as
 * needed; undefined if none.
 */
export async function findMember(path: string, want: (name: string) => boolean): Promise<string | undefined> {
  const input = createReadStream(path);
  const ex = extract();
  let found: string | undefined;
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const name = cleanMemberName(header.name);
      if (want(name)) {
        found = name;
        input.destroy();
        resolve();
        return;
      }
      stream.on('end', () => next());
      stream.resume();
    });
    ex.on('finish', () => resolve());
    ex.on('error', (err: Error) => reject(new PierError(`${path} is not a readable tar archive: ${err.message}`)));
    input.on('error', (err) => { if (!found) reject(err); });
  });
  decompress(input, sniffCompression(fileHead(path, 4))).pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return found;
}

export type Member = { kind: 'bytes'; data: Buffer } | { kind: 'blob'; blob: BlobInfo };

/** An archive read into memory (small JSON members) and the content store (everything else). */
export interface IngestedTar {
  members: Map<string, Member>;
  /** member name → the member it links to (symlinks and hard links inside the archive) */
  links: Map<string, string>;
}

/** Members this small are held in memory: most are metadata, and the ones that are not get stored when used. */
const SMALL = 1 << 20;
const KEEP_JSON_IN_MEMORY = 16 << 20;

function keepInMemory(name: string, size: number): boolean {
  return size <= SMALL || ((name === 'index.json' || name === 'manifest.json' || name.endsWith('.json')) && size <= KEEP_JSON_IN_MEMORY);
}

/** Read an archive as described in the file comment. Corrupt digest-named blobs abort it. */
export async function ingestTar(path: string, store: ContentStore, lease: Lease): Promise<IngestedTar> {
  const members = new Map<string, Member>();
  const links = new Map<string, string>();
  const input = createReadStream(path);
  const ex = extract();
  const src = decompress(input, sniffCompression(fileHead(path, 4)));
  src.pipe(ex as unknown as NodeJS.WritableStream);
  for await (const entry of ex) {
    const header = entry.header;
    const name = cleanMemberName(header.name);
    if (header.type === 'symlink' || header.type === 'link') {
      const target = header.type === 'symlink'
        ? posix.normalize(posix.join(posix.dirname(name), header.linkname))
        : cleanMemberName(header.linkname);
      if (target.startsWith('..') || posix.isAbsolute(header.linkname)) {
        throw new PierError(`archive member ${JSON.stringify(name)} links outside the archive (${header.linkname})`);
      }
      links.set(name, target);
      entry.resume();
      continue;
    }
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      entry.resume();
      continue;
    }
    const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
    const digest = m ? `${m[1]}:${m[2]}` : undefined;
    if (digest && isDigest(digest)) {
      members.set(name, { kind: 'blob', blob: await store.write(entry as AsyncIterable<Uint8Array>, { digest, size: header.size }, lease) });
    } else if (keepInMemory(name, header.size)) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      members.set(name, { kind: 'bytes', data: Buffer.concat(chunks) });
    } else {
      members.set(name, { kind: 'blob', blob: await store.write(entry as AsyncIterable<Uint8Array>, { size: header.size }, lease) });
    }
  }
  return { members, links };
}
