/**
 * pier's state directories are root-only. They hold image content, container root filesystems and
 * overlay upper dirs, where a container (or a layer) can leave set-id programs and device nodes: a
 * local user who could reach them could run those as root or read private images (the
 * CVE-2021-41091 class; moby made its driver dirs 0710/0701, containerd keeps snapshots under 0700).
 *
 * `privateDir` makes one (every missing level with the mode) and `tightenDir` takes an existing
 * one, made by an older pier as 0755, down to the mode, so an upgrade closes it without a wipe.
 */
import { chmodSync, statSync } from 'node:fs';
import { mkdirp } from './atomic.ts';
import { errnoOf } from './errors.ts';

/** Only the owner (root, for the daemon's trees) may list or traverse. */
export const PRIVATE_DIR_MODE = 0o700;

/** mkdir -p with `mode` for every level it creates, then `tightenDir` on the leaf (it may have existed). */
export function privateDir(path: string, mode = PRIVATE_DIR_MODE): void {
  mkdirp(path, mode);
  tightenDir(path, mode);
}

/**
 * Remove from an existing directory's mode every permission bit `mode` does not grant (0755 → 0700;
 * a mode already as strict is left alone). A missing path, or one this process may not chmod (a
 * non-root user pointing at root's tree), is left as it is; returns whether it changed the mode.
 */
export function tightenDir(path: string, mode = PRIVATE_DIR_MODE): boolean {
  let cur: number;
  try {
    const st = statSync(path);
    if (!st.isDirectory()) return false;
    cur = st.mode & 0o7777;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES') return false;
    throw err;
  }
  const extra = cur & 0o777 & ~mode;
  if (extra === 0) return false;
  try {
    chmodSync(path, cur & ~extra);
  } catch (err) {
    if (errnoOf(err) === 'EPERM') return false;
    throw err;
  }
  return true;
}
