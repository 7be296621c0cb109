/**
 * Named network namespaces, made the way `ip netns add` makes them (a bind mount of the namespace
 * under /run/netns) so `ip netns exec`, CNI plugins and the OCI runtime can all join them by path.
 */
import { existsSync } from 'node:fs';
import { PierError } from '../../common/errors.ts';
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

export async function createNetns(name: string): Promise<void> {
  const add = async () => {
    const r = await run('ip', ['netns', 'add', name]);
    if (r.code !== 0) throw new PierError(`creating network namespace ${name}: ${firstLine(r.stderr)}`);
  };
  if (!first) {
    first = add();
    try { await first; } catch (err) { first = undefined; throw err; }
    return;
  }
  await first.catch(() => {});
  await add();
}

/** Remove a named netns; absent is fine (teardown is idempotent). */
export async function deleteNetns(name: string): Promise<void> {
  if (!existsSync(`${NETNS_DIR}/${name}`)) return;
  const r = await run('ip', ['netns', 'del', name]);
  if (r.code !== 0 && existsSync(`${NETNS_DIR}/${name}`)) {
    throw new PierError(`removing network namespace ${name}: ${firstLine(r.stderr)}`);
  }
}

/** Bring up lo inside the netns (the job of CNI's loopback plugin, at a third of its cost). */
export async function loopbackUp(name: string): Promise<void> {
  const r = await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  if (r.code !== 0) throw new PierError(`bringing up lo in ${name}: ${firstLine(r.stderr)}`);
}
