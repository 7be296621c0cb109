/**
 * check: read a layer's tar headers (not its files) and refuse what `applyLayer` would refuse by
 * the entry itself — names or hard links whose `..` climb out of the root, unsupported
 * entry types, malformed whiteouts, a corrupt stream — and compute its diffID. Import runs it on
 * every layer, so a hostile image is refused when it arrives, as containerd's unpack refuses it,
 * instead of when someone first runs it. (What depends on the tree the layer lands on, such as
 * symlinks on an entry's way, is resolved inside the rootfs at unpack and never escapes it.)
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Header } from 'tar-stream';
import { PierError, messageOf } from '../../common/errors.ts';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from './apply.ts';
import { decompressed } from './decompress.ts';
import { baseOf, normalizeEntry } from './safepath.ts';
import { createExtract, toEntry } from './tar-read.ts';

export async function checkLayer(input: Readable, label: string): Promise<{ diffId: string; entries: number }> {
  const { stream: src } = await decompressed(input);
  const hash = createHash('sha256');
  const extract = createExtract();
  let entries = 0;
  const checkEntry = (header: Header): void => {
    const e = toEntry(header);
    if (!e) throw new PierError(`layer entry "${header.name}" has unsupported type ${header.type}`);
    const rel = normalizeEntry(e.name);
    if (rel === '' && e.type !== 'directory') throw new PierError(`layer entry "${e.name}" replaces the root with a non-directory`);
    const base = baseOf(rel);
    if (base.startsWith(WHITEOUT_PREFIX) && base !== OPAQUE_MARKER) {
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      if (hidden === '' || hidden === '.' || hidden === '..' || hidden.startsWith(WHITEOUT_PREFIX)) throw new PierError(`layer entry "${e.name}" is not a valid whiteout`);
    }
    if (e.type === 'link') {
      if (normalizeEntry(e.linkname, e.name) === '') throw new PierError(`layer entry "${e.name}" is a hard link to the root`);
    }
  };
  extract.on('entry', (header, body, next) => {
    entries++;
    body.on('error', () => {});
    try {
      checkEntry(header);
    } catch (err) {
      next(err as Error);
      return;
    }
    body.on('end', () => next());
    body.resume();
  });
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const onError = (err: unknown) => {
      if (failed) return;
      failed = true;
      src.destroy();
      extract.destroy();
      const why = err instanceof PierError ? err.message : `cannot read it: ${messageOf(err)}`;
      reject(new PierError(`${label}: ${why}`, { cause: err }));
    };
    src.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      if (!extract.write(chunk)) src.pause();
    });
    extract.on('drain', () => src.resume());
    src.on('end', () => (extract as unknown as { end(): void }).end());
    src.on('error', onError);
    extract.on('error', onError);
    extract.on('finish', () => { if (!failed) resolve(); });
  });
  return { diffId: `sha256:${hash.digest('hex')}`, entries };
}
