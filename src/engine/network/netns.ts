/**
 * Named network namespaces, made the way `ip netns add` makes them (a bind mount of the namespace
 * under /run/netns) so `ip netns exec`, CNI plugins and the OCI runtime can all join them by path.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { PierError, errnoOf } from '../../common/errors.ts';
import { MNT_DETACH, fsx } from '../../common/fsx.ts';
import { firstLine, run } from './exec.ts';

export const NETNS_DIR = '/run/netns';

export function netnsName(containerId: string): string {
  return `pier-${containerId.slice(0, 12)}`;
}

export function netnsPath(containerId: string): string {
  return `${NETNS_DIR}/${netnsName(containerId)}`;
}

// The first `ip netns add` on a host turns /run/netns into a shared bind mount of itself; several
// first calls at once can stack that mount, so the first one in this process runs alone.
let first: Promise<void> | undefined;

/**
 * Make the named netns with `lo` up: one `ip -batch` (a spawn from pierd costs ~2 ms of its CPU;
 * `netns exec` forks from the small ip process instead).
 */
export async function createNetns(name: string): Promise<void> {
  const add = async () => {
    const r = await run('ip', ['-batch', '-'], { input: `netns add ${name}\nnetns exec ${name} ip link set lo up\n` });
    if (r.code !== 0) {
      const msg = firstLine(r.stderr);
      await deleteNetns(name).catch(() => undefined);
      throw new PierError(`creating network namespace ${name}: ${msg}`);
    }
  };
  if (!first) {
    first = add();
    try { await first; } catch (err) { first = undefined; throw err; }
    return;
  }
  await first.catch(() => {});
  await add();
}

/**
 * Remove a named netns; absent is fine (teardown is idempotent). What `ip netns del` does — a lazy
 * unmount of the bind mount and the unlink — done in-process; `ip` only if that fails.
 */
export async function deleteNetns(name: string): Promise<void> {
  const path = `${NETNS_DIR}/${name}`;
  if (!existsSync(path)) return;
  try {
    try { fsx().umount2(path, MNT_DETACH); } catch (err) { if (errnoOf(err) !== 'EINVAL') throw err; /* not mounted: a half-made one */ }
    unlinkSync(path);
    return;
  } catch { /* fall back to ip's own way */ }
  const r = await run('ip', ['netns', 'del', name]);
  if (r.code !== 0 && existsSync(`${NETNS_DIR}/${name}`)) {
    throw new PierError(`removing network namespace ${name}: ${firstLine(r.stderr)}`);
  }
}
