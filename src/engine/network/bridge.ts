/**
 * The Linux bridge behind a network. pier makes it (with the gateway address) before the first
 * container joins, rather than leaving that to the CNI bridge plugin, so the DNS server can bind the
 * gateway address and the masquerade rule exists before any traffic; the plugin then finds it ready.
 * The plugin never deletes a bridge, so removing the network removes it here.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { PierError } from '../../common/errors.ts';
import { firstLine, run, runSync } from './exec.ts';

/** What the kernel accepts as an interface name (dev_valid_name): 1-15 bytes, no '/', ':' or space. */
export function validIfName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 15 && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

export function linkExists(name: string): boolean {
  return validIfName(name) && existsSync(`/sys/class/net/${name}`);
}

/** Create the bridge if absent, give it the gateway address, bring it up (one `ip` process). */
export async function ensureBridge(name: string, gatewayCidr: string): Promise<void> {
  if (!validIfName(name)) throw new PierError(`invalid bridge name "${name}"`);
  const rest = [`addr replace ${gatewayCidr} dev ${name}`, `link set ${name} up`];
  const batch = (lines: string[]) => run('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
  let r = await batch(linkExists(name) ? rest : [`link add name ${name} type bridge`, ...rest]);
  // Someone else (another pier process, a CNI plugin) made it meanwhile: fine, finish the job.
  if (r.code !== 0 && linkExists(name)) r = await batch(rest);
  if (r.code !== 0) throw new PierError(`setting up bridge ${name}: ${firstLine(r.stderr)}`);
}

/** Synchronous: network removal is a synchronous API call. */
export function deleteBridgeSync(name: string): void {
  if (!linkExists(name)) return;
  const r = runSync('ip', ['link', 'del', name]);
  if (r.code !== 0 && linkExists(name)) throw new PierError(`removing bridge ${name}: ${firstLine(r.stderr)}`);
}

/** Containers on a non-internal network route through the host. */
export function enableForwarding(): void {
  try { writeFileSync('/proc/sys/net/ipv4/ip_forward', '1'); } catch { /* read-only /proc/sys: the plugin tries again */ }
}

/** Delete an interface, e.g. a host-side veth whose namespace outlives its teardown. */
export async function deleteLink(name: string): Promise<void> {
  if (!linkExists(name)) return;
  await run('ip', ['link', 'del', name]);
}
