/**
 * tar-write: tar headers for layers we pack, byte for byte under our control (determinism): ustar,
 * with a PAX record before the header only when a field does not fit (long or non-ASCII names, large
 * ids or sizes) or the entry has xattrs. No atime/ctime, no user/group names, integer mtimes.
 */
import type { EntryType } from './tar-read.ts';

export interface WriteHeader {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Written sorted by name as SCHILY.xattr.* PAX records. */
  xattrs?: Map<string, Buffer>;
}

const TYPEFLAG: Record<EntryType, number> = {
  file: 0x30, link: 0x31, symlink: 0x32, char: 0x33, block: 0x34, directory: 0x35, fifo: 0x36,
};

export const BLOCK = 512;
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
const PAX_NAME = 'PaxHeaders/entry';

/** Largest value an octal field of `width` bytes holds (width-1 digits plus a NUL). */
function maxOctal(width: number): number {
  return 8 ** (width - 1) - 1;
}

function putOctal(buf: Buffer, off: number, width: number, value: number): void {
  buf.write(value.toString(8).padStart(width - 1, '0') + '\0', off, width, 'latin1');
}

function isAscii(s: string): boolean {
  return /^[\x01-\x7f]*$/.test(s);
}

/** ustar name/prefix split of `name`, or undefined when it cannot be stored in the header. */
function splitName(name: string): [string, string] | undefined {
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return ['', name];
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) {
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return [name.slice(0, i), name.slice(i + 1)];
  }
  return undefined;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function rawHeader(name: string, prefix: string, h: WriteHeader, typeflag: number, size: number, linkname: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'latin1');
  putOctal(b, 100, 8, h.mode & 0o7777);
  putOctal(b, 108, 8, Math.min(h.uid, maxOctal(8)));
  putOctal(b, 116, 8, Math.min(h.gid, maxOctal(8)));
  putOctal(b, 124, 12, Math.min(size, maxOctal(12)));
  putOctal(b, 136, 12, Math.max(0, Math.min(h.mtime, maxOctal(12))));
  b.fill(0x20, 148, 156);
  b[156] = typeflag;
  b.write(linkname, 157, 100, 'latin1');
  b.write('ustar\x0000', 257, 8, 'latin1');
  putOctal(b, 329, 8, h.devmajor ?? 0);
  putOctal(b, 337, 8, h.devminor ?? 0);
  b.write(prefix, 345, 155, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

/** The header block(s) for one entry: [PAX header + records + padding] then the ustar header. */
export function encodeHeader(h: WriteHeader): Buffer {
  const name = h.type === 'directory' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  const linkname = h.linkname ?? '';
  const size = h.type === 'file' ? h.size : 0;
  const records: Buffer[] = [];
  let split = splitName(name);
  if (!split) {
    records.push(paxRecord('path', Buffer.from(name)));
    split = ['', Buffer.from(name.slice(0, 100)).toString('latin1').slice(0, 100).replace(/[^\x01-\x7f]/g, '_')];
  }
  let link = linkname;
  if (linkname.length > 100 || !isAscii(linkname)) {
    records.push(paxRecord('linkpath', Buffer.from(linkname)));
    link = '';
  }
  if (h.uid > maxOctal(8)) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > maxOctal(8)) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (size > maxOctal(12)) records.push(paxRecord('size', Buffer.from(String(size))));
  if (h.xattrs) {
    for (const key of [...h.xattrs.keys()].sort()) records.push(paxRecord(`SCHILY.xattr.${key}`, h.xattrs.get(key)!));
  }
  const header = rawHeader(split[1], split[0], h, TYPEFLAG[h.type], size, link);
  if (records.length === 0) return header;
  const pax = Buffer.concat(records);
  const paxHeader = rawHeader(PAX_NAME, '', { ...h, mode: 0o644 }, 0x78, pax.length, '');
  return Buffer.concat([paxHeader, pax, padding(pax.length), header]);
}

/** Zero bytes completing a `size`-byte entry body to a whole block. */
export function padding(size: number): Buffer {
  const r = size % BLOCK;
  return r === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - r);
}

/** A whole tar archive in memory from entries already in order: headers, bodies, end marker. */
export function tarFromEntries(entries: { header: WriteHeader; data?: Uint8Array }[]): Buffer {
  const parts: Uint8Array[] = [];
  for (const { header, data } of entries) {
    const body = header.type === 'file' ? data ?? Buffer.alloc(0) : undefined;
    parts.push(encodeHeader({ ...header, size: body?.length ?? 0 }));
    if (body) parts.push(body, padding(body.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}
