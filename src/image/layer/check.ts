/**
 * check: read a layer's tar headers (not its files) and refuse what `applyLayer` would refuse by
 * the entry itself — names or hard links whose `..` climb out of the root, unsupported
 * entry types, malformed whiteouts, a corrupt stream — and compute its diffID. Import runs it on
 * every layer, so a hostile image is refused when it arrives, as containerd's unpack refuses it,
 * instead of when someone first runs it. (What depends on the tree the layer lands on, such as
 * symlinks on an entry's way, is resolved inside the rootfs at unpack and never escapes it.)
 */
import type { Readable } from 'node:stream';
import type { Header } from 'tar-stream';
import { PierError, messageOf } from '../../common/errors.ts';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from './apply.ts';
import { baseOf, normalizeEntry } from './safepath.ts';
import { readTar, toEntry } from './tar-read.ts';

export async function checkLayer(input: Readable, label: string): Promise<{ diffId: string; entries: number }> {
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
    if (e.type === 'link' && normalizeEntry(e.linkname, e.name) === '') throw new PierError(`layer entry "${e.name}" is a hard link to the root`);
  };
  try {
    const diffId = await readTar(input, 'it', (header, body) => {
      entries++;
      checkEntry(header);
      // Headers only: the body is skipped.
      return new Promise<void>((resolve) => { body.on('end', () => resolve()); body.resume(); });
    });
    return { diffId, entries };
  } catch (err) {
    throw new PierError(`${label}: ${messageOf(err)}`, { cause: err });
  }
}
