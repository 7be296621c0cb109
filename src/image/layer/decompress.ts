/**
 * decompress: a layer stream of unknown compression → the plain tar, chosen by magic number
 * (gzip 1f 8b, zstd 28 b5 2f fd, anything else is taken as a plain tar), not by media type, since
 * registries and archives mislabel layers often enough.
 */
import { Readable, pipeline } from 'node:stream';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import type { Compression } from './media.ts';

/** Output chunk size of the decompressors: large chunks mean fewer, larger file writes. */
const CHUNK = 1 << 20;

export function sniff(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** The uncompressed bytes of `input`, and the compression that was found. */
export async function decompressed(input: Readable): Promise<{ compression: Compression; stream: Readable }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const head: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < 4) {
    const r = await it.next();
    if (r.done) { done = true; break; }
    const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    head.push(b);
    have += b.length;
  }
  const first = Buffer.concat(head);
  const compression = sniff(first);
  const replay = Readable.from((async function* () {
    if (first.length) yield first;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  })(), { objectMode: false, highWaterMark: CHUNK });
  if (compression === 'none') return { compression, stream: replay };
  const d = compression === 'gzip' ? createGunzip({ chunkSize: CHUNK }) : createZstdDecompress({ chunkSize: CHUNK });
  // pipeline destroys every stage on failure, so a corrupt stream surfaces as an error on `d`.
  pipeline(replay, d, () => {});
  return { compression, stream: d };
}
