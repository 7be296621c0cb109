/** The /etc/hosts and /etc/resolv.conf content a sandbox gets (docker's layout). */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { PierError } from '../../common/errors.ts';

const BASE_HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

function readOr(path: string, fallback: string): string {
  try { return readFileSync(path, 'utf8'); } catch { return fallback; }
}

/** Validated "host:ip" entries; "host-gateway" stands for the gateway the container reaches the host by. */
export function extraHostLines(extra: string[], hostGateway: string | undefined): string[] {
  return extra.map((e) => {
    const at = e.indexOf(':');
    const host = at < 0 ? '' : e.slice(0, at);
    let ip = at < 0 ? '' : e.slice(at + 1);
    if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (ip === 'host-gateway') {
      if (!hostGateway) throw new PierError(`invalid extra host "${e}": no gateway to stand for host-gateway`);
      ip = hostGateway;
    }
    if (!/^[A-Za-z0-9_.-]+$/.test(host) || isIP(ip) === 0) throw new PierError(`invalid extra host "${e}": use host:ip`);
    return `${ip}\t${host}`;
  });
}

export function sandboxHosts(hostname: string, ip: string | undefined, extra: string[]): string {
  const lines = [...BASE_HOSTS, ...extra];
  if (ip && hostname) {
    const short = hostname.split('.')[0];
    lines.push(`${ip}\t${hostname}${short !== hostname ? ` ${short}` : ''}`);
  }
  return lines.join('\n') + '\n';
}

/** Host networking shares the host's files; extra hosts are appended. */
export function hostModeHosts(extra: string[]): string {
  const text = readOr('/etc/hosts', BASE_HOSTS.join('\n') + '\n');
  return text + (text.endsWith('\n') ? '' : '\n') + extra.map((l) => l + '\n').join('');
}

export function hostResolvConf(): string {
  return readOr('/etc/resolv.conf', '');
}

interface Resolv { nameservers: string[]; search: string[]; options: string[] }

export function parseResolvConf(text: string): Resolv {
  const r: Resolv = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const [key, ...rest] = raw.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (key === 'nameserver' && rest[0]) r.nameservers.push(rest[0]);
    else if ((key === 'search' || key === 'domain') && rest.length) r.search = rest;
    else if (key === 'options') r.options.push(...rest);
  }
  return r;
}

function render(r: Resolv): string {
  const lines = r.nameservers.map((n) => `nameserver ${n}`);
  if (r.search.length) lines.push(`search ${r.search.join(' ')}`);
  if (r.options.length) lines.push(`options ${r.options.join(' ')}`);
  return lines.join('\n') + '\n';
}

const loopback = (ip: string) => ip.startsWith('127.') || ip === '::1';

/**
 * The default network: the host's resolver settings minus loopback nameservers (unreachable from a
 * container's namespace), or public ones when nothing is left, as docker does.
 */
export function copiedResolvConf(hostText = hostResolvConf()): string {
  const r = parseResolvConf(hostText);
  r.nameservers = r.nameservers.filter((n) => !loopback(n));
  if (r.nameservers.length === 0) r.nameservers = ['8.8.8.8', '8.8.4.4'];
  return render(r);
}

/** User networks: pier's DNS server on the gateway; ndots:0 so bare container names go out as-is first. */
export function embeddedResolvConf(nameserver: string, hostText = hostResolvConf()): string {
  const r = parseResolvConf(hostText);
  r.nameservers = [nameserver];
  if (!r.options.some((o) => o.startsWith('ndots:'))) r.options.push('ndots:0');
  return render(r);
}
