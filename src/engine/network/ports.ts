/**
 * Published ports: checking requests, and keeping two publishers off one host port. portmap's DNAT
 * rules bind nothing, so the kernel would not notice a clash: pier checks its own sandboxes (kept in
 * memory, rebuilt from records at start) and the host's sockets (/proc/net/{tcp,udp}[6]).
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { PierError } from '../../common/errors.ts';
import { parseIpv4 } from './ipam/subnets.ts';
import type { PortMapping } from './types.ts';

const WILDCARD = '0.0.0.0';

function label(p: PortMapping): string {
  return `${p.hostIp || WILDCARD}:${p.hostPort}/${p.protocol}`;
}

/** Validated copies: integer ports in range, tcp/udp, an IPv4 host address or none. */
export function normalizePorts(ports: PortMapping[]): PortMapping[] {
  return ports.map((p) => {
    const protocol = (p.protocol ?? 'tcp').toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp') throw new PierError(`invalid protocol "${p.protocol}" for port ${p.containerPort}: use tcp or udp`);
    if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) throw new PierError(`invalid container port "${p.containerPort}"`);
    if (!Number.isInteger(p.hostPort) || p.hostPort < 0 || p.hostPort > 65535) throw new PierError(`invalid host port "${p.hostPort}"`);
    let hostIp = p.hostIp ?? '';
    if (hostIp === WILDCARD) hostIp = '';
    if (hostIp !== '' && parseIpv4(hostIp) === undefined) {
      throw new PierError(isIPv6(hostIp) ? `invalid host address "${hostIp}": only IPv4 is supported` : `invalid host address "${hostIp}"`);
    }
    const out: PortMapping = { hostPort: p.hostPort, containerPort: p.containerPort, protocol };
    if (hostIp) out.hostIp = hostIp;
    return out;
  });
}

interface Listener { ip: string; port: number; protocol: 'tcp' | 'udp' }

/** Decode /proc/net's "0100007F:1F90": each 32-bit word of the address is in host (little-endian) order. */
function decode(local: string): { ip: string; port: number } {
  const [hex, portHex] = local.split(':');
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16)));
  let ip: string;
  if (bytes.length === 4) ip = bytes.join('.');
  else if (bytes.every((b) => b === 0)) ip = '::';
  else if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255) ip = bytes.slice(12).join('.');
  else ip = 'v6';  // a specific IPv6 address: never clashes with an IPv4 mapping
  return { ip, port: parseInt(portHex, 16) };
}

export function hostListeners(): Listener[] {
  const out: Listener[] = [];
  for (const [file, protocol] of [['tcp', 'tcp'], ['tcp6', 'tcp'], ['udp', 'udp'], ['udp6', 'udp']] as const) {
    let text: string;
    try { text = readFileSync(`/proc/net/${file}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      // TCP: only listeners; UDP: every bound socket holds its port.
      if (protocol === 'tcp' && f[3] !== '0A') continue;
      const { ip, port } = decode(f[1]);
      if (port !== 0) out.push({ ip, port, protocol });
    }
  }
  return out;
}

function clashes(aIp: string, bIp: string): boolean {
  const wild = (ip: string) => ip === '' || ip === WILDCARD || ip === '::';
  return wild(aIp) || wild(bIp) || aIp === bIp;
}

/** Host ports published by pier sandboxes, by container id. */
export class PortTable {
  private byContainer = new Map<string, PortMapping[]>();

  /** Throws the one-line reason the first of `ports` cannot be published. */
  check(ports: PortMapping[], listeners: Listener[] = hostListeners()): void {
    const seen: PortMapping[] = [];
    for (const p of ports) {
      if (p.hostPort === 0) continue;
      const taken = (q: PortMapping) => q.protocol === p.protocol && q.hostPort === p.hostPort && clashes(q.hostIp ?? '', p.hostIp ?? '');
      if (seen.some(taken) || [...this.byContainer.values()].some((list) => list.some(taken))) {
        throw new PierError(`port ${p.hostPort}/${p.protocol} is already allocated`);
      }
      if (listeners.some((l) => l.protocol === p.protocol && l.port === p.hostPort && clashes(l.ip, p.hostIp ?? ''))) {
        throw new PierError(`bind ${p.hostIp || WILDCARD}:${p.hostPort}: address already in use`);
      }
      seen.push(p);
    }
  }

  /**
   * Check and take the ports for a container in one synchronous step (so two concurrent setups
   * cannot both pass the check), choosing a free ephemeral port where hostPort is 0.
   */
  reserve(containerId: string, ports: PortMapping[]): PortMapping[] {
    const listeners = hostListeners();
    this.check(ports, listeners);
    const fixed = ports.filter((p) => p.hostPort !== 0);
    const picked: PortMapping[] = [];
    const chosen = ports.map((p) => {
      if (p.hostPort !== 0) return p;
      const q = { ...p, hostPort: this.freePort(p, [...fixed, ...picked], listeners) };
      picked.push(q);
      return q;
    });
    this.byContainer.set(containerId, chosen);
    return chosen;
  }

  /** Re-take ports of a sandbox found on disk (no checks: it already owns them). */
  adopt(containerId: string, ports: PortMapping[]): void {
    if (ports.length > 0) this.byContainer.set(containerId, ports);
  }

  release(containerId: string): void {
    this.byContainer.delete(containerId);
  }

  private freePort(p: PortMapping, others: PortMapping[], listeners: Listener[]): number {
    let [lo, hi] = [32768, 60999];
    try {
      const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
      if (a > 0 && b >= a) [lo, hi] = [a, b];
    } catch { /* keep the kernel default */ }
    const span = hi - lo + 1;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      const cand = { ...p, hostPort: lo + ((start + i) % span) };
      try { this.check([...others, cand], listeners); return cand.hostPort; } catch { /* taken: next */ }
    }
    throw new PierError(`no free host port for ${label(p)}`);
  }
}
