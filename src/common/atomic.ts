import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/**
 * Write a file so readers see either the old or the new content, never a torn one:
 * a temp file in the same directory, optionally fsynced, then rename(2).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number; fsync?: boolean } = {}): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`);
  const fd = openSync(tmp, 'wx', opts.mode ?? 0o644);
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (opts.fsync) fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw err;
  }
}

/**
 * mkdir -p that terminates: Node's recursive mkdirSync loops forever when a parent exists but the
 * child cannot be made with ENOENT (e.g. under /proc), so each level is tried once.
 */
export function mkdirp(path: string, mode = 0o755): void {
  try {
    mkdirSync(path, { mode });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(path) === path) throw err;
    mkdirp(dirname(path), mode);
    try {
      mkdirSync(path, { mode });
    } catch (err2) {
      if ((err2 as { code?: string }).code !== 'EEXIST') throw err2;
    }
  }
}
