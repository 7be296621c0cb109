/**
 * `busybox:latest` from the host's static busybox (Debian's busybox-static): one layer with the
 * binary, a symlink per applet, /etc/passwd and /etc/group. The tar is written here entry by entry
 * (root-owned, fixed mtime, sorted), so the same busybox gives the same digests every time.
 */
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { tarFromEntries, type WriteHeader } from '../layer/index.ts';
import { PierError } from '../../common/errors.ts';
import { digestOf } from '../../common/digest.ts';
import type { ContentStore, Lease } from '../store/content.ts';
import { MEDIA_TYPES, type Descriptor } from '../oci/types.ts';
import { writeImage, DEFAULT_PATH } from '../transfer/compose.ts';

export const BUSYBOX_PATH = '/bin/busybox';

/** True when the ELF file has no PT_INTERP header, i.e. it needs no dynamic loader. */
export function isStaticElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = buf[4] === 2;
  const le = buf[5] === 1;
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const phoff = is64 ? Number(le ? buf.readBigUInt64LE(32) : buf.readBigUInt64BE(32)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > buf.length) return false;
    if (u32(off) === 3) return false;
  }
  return true;
}

interface Entry {
  header: WriteHeader;
  data?: Buffer;
}

/** The layer's tar, uncompressed, written by the layer module's deterministic tar writer. */
export async function busyboxTar(binary: Buffer, applets: string[], mtimeSeconds: number): Promise<Buffer> {
  const base = { uid: 0, gid: 0, mtime: mtimeSeconds, size: 0 };
  const entries: Entry[] = [];
  const dirs = new Set(['bin', 'dev', 'etc', 'home', 'proc', 'root', 'sbin', 'sys', 'tmp', 'usr', 'usr/bin', 'usr/sbin', 'var']);
  for (const a of applets) {
    const parts = a.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of dirs) {
    entries.push({ header: { ...base, name: `${d}/`, type: 'directory', mode: d === 'tmp' ? 0o1777 : d === 'root' ? 0o700 : 0o755 } });
  }
  entries.push({ header: { ...base, name: 'bin/busybox', type: 'file', mode: 0o755 }, data: binary });
  const passwd = Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  const group = Buffer.from('root:x:0:\nnobody:x:65534:\n');
  entries.push({ header: { ...base, name: 'etc/passwd', type: 'file', mode: 0o644 }, data: passwd });
  entries.push({ header: { ...base, name: 'etc/group', type: 'file', mode: 0o644 }, data: group });
  for (const a of applets) {
    if (a === 'bin/busybox' || dirs.has(a)) continue;
    entries.push({ header: { ...base, name: a, type: 'symlink', mode: 0o777, linkname: '/bin/busybox' } });
  }
  const seen = new Set<string>();
  const unique = entries.filter((e) => (seen.has(e.header.name) ? false : (seen.add(e.header.name), true)));
  unique.sort((x, y) => (x.header.name < y.header.name ? -1 : x.header.name > y.header.name ? 1 : 0));
  return tarFromEntries(unique);
}

/** Applet paths (`bin/sh`, `usr/bin/awk`, …) the binary provides. */
export function listApplets(binaryPath: string): string[] {
  let out: string;
  try {
    out = execFileSync(binaryPath, ['--list-full'], { encoding: 'utf8' });
  } catch (err) {
    throw new PierError(`${binaryPath} --list-full failed: ${(err as Error).message}`);
  }
  return out.split('\n').map((s) => s.trim().replace(/^\/+/, '')).filter((s) => s && !s.includes('..'));
}

export interface BusyboxOptions {
  binary?: string;
  /** mtimes and created time, seconds since the epoch (default $SOURCE_DATE_EPOCH, else 0) */
  sourceDateEpoch?: number;
}

export async function bootstrapBusybox(store: ContentStore, lease: Lease, opts: BusyboxOptions = {}): Promise<Descriptor> {
  const path = opts.binary ?? BUSYBOX_PATH;
  if (!existsSync(path)) throw new PierError(`${path} not found: install Debian's busybox-static (apt-get install busybox-static)`);
  const binary = readFileSync(path);
  if (!isStaticElf(binary)) throw new PierError(`${path} is not a statically linked ELF binary: install Debian's busybox-static, not busybox`);
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv() ?? 0;
  const tar = await busyboxTar(binary, listApplets(path), epoch);
  const gz = gzipSync(tar, { level: 9 });
  const blob = await store.write(gz, {}, lease);
  const created = new Date(epoch * 1000).toISOString();
  const img = await writeImage(store, {
    layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: blob.digest, size: blob.size, diffId: digestOf(tar) }],
    config: { Env: [DEFAULT_PATH], Cmd: ['sh'] },
    created,
    history: [{ created, created_by: `pier image bootstrap busybox (${path})` }],
  }, lease);
  return img.descriptor;
}

export function sourceDateEpochFromEnv(): number | undefined {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new PierError(`SOURCE_DATE_EPOCH must be a whole number of seconds, not ${JSON.stringify(v)}`);
  return Number(v);
}
