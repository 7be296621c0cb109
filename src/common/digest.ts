/**
 * Content digests as OCI writes them: `algorithm:hex` (image-spec descriptor.md). sha256 is what
 * pier writes; sha512 is accepted when reading. Helpers hash buffers, streams and files.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { PierError } from './errors.ts';

export type DigestAlgorithm = 'sha256' | 'sha512';

/** Hex length of each registered algorithm's output. */
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** The grammar of image-spec descriptor.md, before the per-algorithm checks. */
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

/** Parse and check a digest string; `what` names it in the error ("config digest"). */
export function parseDigest(s: unknown, what = 'digest'): ParsedDigest {
  if (typeof s !== 'string') throw new PierError(`${what} must be a string like sha256:<64 hex>, not ${JSON.stringify(s)}`);
  if (!DIGEST_GRAMMAR.test(s)) throw new PierError(`${what} ${JSON.stringify(s)} is not a digest (algorithm:hex)`);
  const i = s.indexOf(':');
  const algorithm = s.slice(0, i);
  const hex = s.slice(i + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new PierError(`${what} ${JSON.stringify(s)} uses unsupported algorithm ${JSON.stringify(algorithm)} (sha256 or sha512)`);
  }
  if (!/^[a-f0-9]+$/.test(hex) || hex.length !== HEX_LENGTH[algorithm]) {
    throw new PierError(`${what} ${JSON.stringify(s)} must have ${HEX_LENGTH[algorithm]} lowercase hex digits after ${algorithm}:`);
  }
  return { algorithm, hex };
}

export function isDigest(s: unknown): s is string {
  try { parseDigest(s); return true; } catch { return false; }
}

export function newHash(algorithm: DigestAlgorithm = 'sha256'): Hash {
  return createHash(algorithm);
}

/** `sha256:<hex>` of bytes. */
export function digestOf(data: string | Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Digest and byte count of everything a stream yields (consumes the stream). */
export async function digestStream(stream: Readable | AsyncIterable<Uint8Array>, algorithm: DigestAlgorithm = 'sha256'): Promise<{ digest: string; size: number }> {
  const h = createHash(algorithm);
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Uint8Array | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    h.update(b);
    size += b.length;
  }
  return { digest: `${algorithm}:${h.digest('hex')}`, size };
}

/** Digest and size of a file's content. */
export function digestFile(path: string, algorithm: DigestAlgorithm = 'sha256'): Promise<{ digest: string; size: number }> {
  return digestStream(createReadStream(path), algorithm);
}
