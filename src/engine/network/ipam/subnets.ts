/**
 * IPv4 subnet arithmetic for network creation: parsing and checking --subnet/--gateway, overlap
 * tests, and picking the next free /24 for networks created without a subnet. Addresses are uint32.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { PierError } from '../../../common/errors.ts';

export interface Cidr { base: number; prefix: number }

export function parseIpv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function cidrString(c: Cidr): string {
  return `${formatIpv4(c.base)}/${c.prefix}`;
}

export function lastAddress(c: Cidr): number {
  return (c.base | (~mask(c.prefix) >>> 0)) >>> 0;
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.prefix)) >>> 0) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b.base) || contains(b, a.base);
}

/** Parse a user's --subnet: IPv4, canonical (no host bits), with room for a gateway and containers. */
export function parseSubnet(s: string): Cidr {
  const bad = (why?: string) => new PierError(`invalid subnet "${s}"${why ? `: ${why}` : ''}`);
  const [addr, len, extra] = s.split('/');
  if (extra !== undefined || len === undefined || !/^\d{1,2}$/.test(len)) {
    throw bad(addr !== undefined && isIPv6(addr) ? 'only IPv4 is supported' : undefined);
  }
  if (isIPv6(addr)) throw bad('only IPv4 is supported');
  const ip = parseIpv4(addr);
  const prefix = Number(len);
  if (ip === undefined || prefix > 32) throw bad();
  if (prefix > 30) throw bad('too small: the prefix must be /30 or shorter');
  if (prefix < 8) throw bad('too large: the prefix must be /8 or longer');
  const base = (ip & mask(prefix)) >>> 0;
  if (base !== ip) throw bad(`did you mean ${formatIpv4(base)}/${prefix}?`);
  return { base, prefix };
}

/** The gateway: the given address (checked to be a usable host of the subnet) or the first host. */
export function parseGateway(s: string | undefined, subnet: Cidr): number {
  if (s === undefined || s === '') return subnet.base + 1;
  const ip = parseIpv4(s);
  if (ip === undefined) throw new PierError(`invalid gateway "${s}"`);
  if (!contains(subnet, ip)) throw new PierError(`gateway ${s} is not in subnet ${cidrString(subnet)}`);
  if (ip === subnet.base || ip === lastAddress(subnet)) throw new PierError(`gateway ${s} is not a usable address in ${cidrString(subnet)}`);
  return ip;
}

/** Destinations of the host's IPv4 routes (main table, not the default route), from /proc/net/route. */
export function hostRoutes(text?: string): Cidr[] {
  let t = text;
  if (t === undefined) {
    try { t = readFileSync('/proc/net/route', 'utf8'); } catch { return []; }
  }
  const routes: Cidr[] = [];
  for (const line of t.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    // Fields are little-endian hex: "0000580A" is 10.88.0.0.
    const le = (h: string) => { const n = parseInt(h, 16); return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0; };
    const dest = le(f[1]), m = le(f[7]);
    const prefix = Math.clz32(~m >>> 0); // leading ones of the mask
    if (prefix === 0) continue;
    routes.push({ base: (dest & mask(prefix)) >>> 0, prefix });
  }
  return routes;
}

/** The first 10.<89..255>.<n>.0/24 that overlaps nothing taken. */
export function pickSubnet(taken: Cidr[]): Cidr {
  for (let b = 89; b <= 255; b++) {
    for (let c = 0; c <= 255; c++) {
      const cand = { base: ((10 << 24) | (b << 16) | (c << 8)) >>> 0, prefix: 24 };
      if (!taken.some((t) => overlaps(t, cand))) return cand;
    }
  }
  throw new PierError('no free subnet left in 10.89.0.0-10.255.255.0; pass --subnet');
}
