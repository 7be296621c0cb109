/**
 * tar-read: tar-stream's extractor, plus what a layer needs from PAX records that tar-stream does not
 * give: `SCHILY.xattr.*` values as bytes (tar-stream decodes every PAX value as UTF-8, which
 * corrupts binary values such as security.capability), and mtime/uid/gid overrides.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import type { Extract, Header } from 'tar-stream';
import { PierError, messageOf } from '../../common/errors.ts';
import { decompressed } from './decompress.ts';

export type EntryType = 'file' | 'link' | 'symlink' | 'directory' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  name: string;
  type: EntryType;
  /** Permission bits including set-id and sticky (& 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

const XATTR = 'SCHILY.xattr.';

/** PAX records; xattr values are kept as latin1 strings so every byte survives (see toEntry). */
function decodePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < buf.length) {
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(buf.toString('latin1', off, sp), 10);
    if (!(len > 0) || off + len > buf.length) break;
    const rec = buf.subarray(sp + 1, off + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq >= 0) {
      const key = rec.toString('utf8', 0, eq);
      out[key] = rec.toString(key.startsWith(XATTR) ? 'latin1' : 'utf8', eq + 1);
    }
    off += len;
  }
  return out;
}

/**
 * A tar-stream extractor whose PAX decoding keeps binary values. This overrides one private method of
 * tar-stream 3.x's Extract (pinned by package.json); an upgrade that renames it fails the xattr tests.
 */
export function createExtract(): Extract {
  const ex = tarStream.extract();
  const self = ex as unknown as {
    _header: { type: string };
    _paxGlobal: Record<string, string> | null;
    _pax: Record<string, string> | null;
    _decodeLongHeader: (buf: Buffer) => void;
  };
  const original = self._decodeLongHeader;
  if (typeof original !== 'function') throw new Error('tar-stream internals changed: Extract._decodeLongHeader is missing');
  self._decodeLongHeader = function (this: typeof self, buf: Buffer) {
    if (this._header.type === 'pax-header') {
      this._pax = Object.assign({}, this._paxGlobal ?? {}, decodePax(buf));
    } else if (this._header.type === 'pax-global-header') {
      this._paxGlobal = decodePax(buf);
    } else {
      original.call(this, buf);
    }
  };
  // A tar that ends right after its last entry's data, without the padding to the next block and
  // the end-of-archive blocks, is complete: Debian's umoci 0.4.7 writes such layers (and hashes
  // them so), and Go's archive/tar reads them. Anything shorter than the last entry's data is
  // still "Unexpected end of data".
  const state = ex as unknown as { _stream: unknown; _longHeader: boolean; _missing: number; _buffer: { buffered: number }; _final: (cb: (err?: Error | null) => void) => void };
  const final = state._final;
  if (typeof final !== 'function' || typeof state._missing !== 'number') throw new Error('tar-stream internals changed: Extract._final or _missing is missing');
  state._final = function (this: typeof state, cb: (err?: Error | null) => void) {
    if (this._stream === null && !this._longHeader && this._missing > 0 && this._missing < 512 && this._buffer.buffered === 0) this._missing = 0;
    final.call(this, cb);
  };
  return ex;
}

const TYPES: Record<string, EntryType | undefined> = {
  'file': 'file', 'contiguous-file': 'file', 'link': 'link', 'symlink': 'symlink', 'directory': 'directory',
  'character-device': 'char', 'block-device': 'block', 'fifo': 'fifo',
};

/** The entry a header describes, or undefined for a type a layer cannot hold (reported by the caller). */
export function toEntry(h: Header): TarEntry | undefined {
  const type = TYPES[h.type];
  if (!type) return undefined;
  const pax = (h.pax ?? {}) as Record<string, string>;
  let mtimeSec = Math.floor(h.mtime.getTime() / 1000);
  let mtimeNsec = 0;
  if (pax.mtime) {
    const m = /^(-?\d+)(?:\.(\d{1,9})\d*)?$/.exec(pax.mtime);
    if (m) {
      mtimeSec = Number(m[1]);
      mtimeNsec = m[2] ? Number(m[2].padEnd(9, '0')) : 0;
      if (mtimeSec < 0 && mtimeNsec > 0) { mtimeSec -= 1; mtimeNsec = 1e9 - mtimeNsec; }
    }
  }
  const xattrs = new Map<string, Buffer>();
  for (const key of Object.keys(pax)) {
    if (key.startsWith(XATTR)) xattrs.set(key.slice(XATTR.length), Buffer.from(pax[key], 'latin1'));
  }
  return {
    name: h.name,
    type,
    mode: h.mode & 0o7777,
    uid: pax.uid ? Number(pax.uid) : h.uid,
    gid: pax.gid ? Number(pax.gid) : h.gid,
    size: h.size,
    mtimeSec,
    mtimeNsec,
    linkname: h.linkname ?? '',
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
    xattrs,
  };
}

/** An entry's body as a handler gets it (tar-stream's entry stream). */
export interface EntryBody {
  on(ev: string, fn: (x?: unknown) => void): unknown;
  resume(): unknown;
}

/**
 * Read a layer (plain, gzip or zstd): each entry goes to `onEntry` in order, the next one only once
 * its promise settles; resolves with the diffID (sha256 of the uncompressed tar; '' with digest
 * false) when the tar ends.
 * A failure — a rejected `onEntry`, a corrupt stream — is one PierError (`cannot read <what>: …`
 * for the stream's own); reading stops there.
 */
export async function readTar(input: Readable, what: string, onEntry: (header: Header, body: EntryBody) => Promise<void>, opts: { digest?: boolean } = {}): Promise<string> {
  const { stream: src } = await decompressed(input);
  // A tar that is not a layer (pier cp's) needs no diffID, nor the sha256 pass over every byte.
  const hash = opts.digest === false ? undefined : createHash('sha256');
  const extract = createExtract();
  extract.on('entry', (header, body, next) => {
    // next(err) destroys the extractor, and with it this entry's body: its error is already ours.
    body.on('error', () => {});
    // A handler that throws at once is a rejection like any other.
    Promise.resolve().then(() => onEntry(header, body)).then(() => next(), (err: unknown) => {
      next(err instanceof PierError ? err : new PierError(`layer entry "${header.name}": ${messageOf(err)}`, { cause: err }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    let failed = false;
    const onError = (err: unknown) => {
      if (failed) return;
      failed = true;
      src.destroy();
      extract.destroy();
      reject(err instanceof PierError ? err : new PierError(`cannot read ${what}: ${messageOf(err)}`, { cause: err }));
    };
    src.on('data', (chunk: Buffer) => {
      hash?.update(chunk);
      if (!extract.write(chunk)) src.pause();
    });
    extract.on('drain', () => src.resume());
    src.on('end', () => (extract as unknown as { end(): void }).end());
    src.on('error', onError);
    extract.on('error', onError);
    extract.on('finish', () => { if (!failed) resolve(); });
  });
  return hash ? `sha256:${hash.digest('hex')}` : '';
}
