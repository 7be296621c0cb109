/**
 * safepath: layer entry names, normalised lexically. Where an entry then lands on disk is resolved
 * through fds inside the target (dircache.ts over common/rooted.ts), symlinks as a chroot would.
 */
import { PierError } from '../../common/errors.ts';

export function escapes(entry: string): PierError {
  return new PierError(`layer entry "${entry}" escapes the rootfs`);
}

/**
 * `name` as a relative path without `.`, `..` or empty components ('' is the root itself). A
 * leading `/` means the root (umoci writes `/etc/motd`; GNU tar, containerd and docker all read it
 * so); names whose `..` climb above the root are refused.
 */
export function normalizeEntry(name: string, entry: string = name): string {
  if (name.includes('\0')) throw new PierError(`layer entry "${entry}" has a NUL byte in its name`);
  return normalizeRel(name.split('/'), entry);
}

function normalizeRel(parts: string[], entry: string): string {
  const out: string[] = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (out.length === 0) throw escapes(entry);
      out.pop();
    } else out.push(p);
  }
  return out.join('/');
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}
