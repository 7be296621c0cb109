/** Test helpers for layers: tars built with tar-stream, tree listings to compare unpacked trees. */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import type { Header } from 'tar-stream';
import { fsx } from '../../src/common/fsx.ts';

export type TarSpec = Partial<Header> & { name: string; body?: string | Buffer };

/** A tar (as one Buffer) of the given entries, in order. */
export async function makeTar(entries: TarSpec[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => { for await (const c of pack) chunks.push(c as Buffer); })();
  for (const { body, ...h } of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body !== undefined) pack.entry({ mtime: new Date(1_600_000_000_000), ...h }, typeof body === 'string' ? Buffer.from(body) : body, cb);
      else (pack.entry({ mtime: new Date(1_600_000_000_000), ...h }, cb) as unknown as { end(): void }).end();
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export function streamOf(buf: Buffer): Readable {
  return Readable.from([buf], { objectMode: false });
}

/** One line per node: path, type, mode, owner, mtime (s), size, link/device, content hash, xattrs. */
export function listTree(root: string, opts: { mtimes?: boolean } = {}): string[] {
  const out: string[] = [];
  const f = fsx();
  const inodes = new Map<number, string>();
  const walk = (rel: string) => {
    const abs = rel ? join(root, rel) : root;
    const st = lstatSync(abs);
    let extra = '';
    if (st.isSymbolicLink()) extra = `-> ${readlinkSync(abs)}`;
    else if (st.isFile()) {
      extra = readFileSync(abs).toString('base64').slice(0, 40);
      if (st.nlink > 1) { const first = inodes.get(st.ino); if (first) extra += ` link=${first}`; else inodes.set(st.ino, rel); }
    } else if (st.isCharacterDevice() || st.isBlockDevice()) extra = `dev=${f.devsplit(st.rdev).join(',')}`;
    const xattrs = f.llistxattr(abs).sort().map((n) => `${n}=${f.lgetxattr(abs, n)!.toString('hex')}`).join(',');
    const mtime = opts.mtimes === false || st.isDirectory() && rel === '' ? '' : Math.floor(st.mtimeMs / 1000);
    out.push(`${rel || '.'} ${(st.mode).toString(8)} ${st.uid}:${st.gid} ${mtime} ${st.isDirectory() ? '' : st.size} ${extra} ${xattrs}`);
    if (st.isDirectory()) for (const n of readdirSync(abs).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  return out;
}
