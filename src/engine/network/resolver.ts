/**
 * Docker's name resolution on user networks, as pure functions over the live records: a container
 * finds another by name, short id or network alias on any user network the two share (the network
 * the query arrived on first), also as "<name>.<network>". The asker is identified by its address.
 */
import type { NetworkConfig, SandboxRecord } from './types.ts';

export interface Query { source: string; local: string }

/** The user networks whose containers the asker may see, the one queried first. */
function scope(nets: NetworkConfig[], live: SandboxRecord[], q: Query): NetworkConfig[] {
  const here = nets.find((n) => n.dns && n.gateway === q.local);
  if (!here) return [];
  const asker = live.find((s) => s.attachments.some((a) => a.networkId === here.id && a.ip === q.source));
  if (!asker) return [here];
  const ids = [here.id, ...asker.attachments.map((a) => a.networkId).filter((id) => id !== here.id)];
  return ids.flatMap((id) => nets.filter((n) => n.id === id && n.dns));
}

function namesOf(s: SandboxRecord, aliases: string[]): string[] {
  return [s.name.replace(/^\//, ''), s.containerId.slice(0, 12), ...aliases].filter(Boolean).map((n) => n.toLowerCase());
}

/** Addresses for a name (lower case, no trailing dot), or undefined when pier does not know it. */
export function lookupName(nets: NetworkConfig[], live: SandboxRecord[], q: Query & { name: string }): string[] | undefined {
  for (const n of scope(nets, live, q)) {
    const suffix = `.${n.name.toLowerCase()}`;
    const bare = q.name.endsWith(suffix) ? q.name.slice(0, -suffix.length) : undefined;
    const ips: string[] = [];
    for (const s of live) {
      for (const a of s.attachments) {
        if (a.networkId !== n.id || !a.ip) continue;
        const names = namesOf(s, a.aliases);
        if (names.includes(q.name) || (bare !== undefined && names.includes(bare))) ips.push(a.ip);
      }
    }
    if (ips.length > 0) return ips;
  }
  return undefined;
}

/** The container name behind an address on a network the asker shares, for PTR queries. */
export function lookupAddress(nets: NetworkConfig[], live: SandboxRecord[], q: Query & { ip: string }): string | undefined {
  for (const n of scope(nets, live, q)) {
    for (const s of live) {
      if (s.attachments.some((a) => a.networkId === n.id && a.ip === q.ip)) return s.name.replace(/^\//, '');
    }
  }
  return undefined;
}
