/**
 * Remote references: `host[:port]/repo[:tag|@digest]`. The host is the first path component and
 * must look like a host (a dot, a port, or `localhost`); there is no implied default registry.
 */
import { PierError } from '../../common/errors.ts';
import { parseReference, formatReference } from '../../image/index.ts';

export interface RemoteReference {
  /** `127.0.0.1:5000` */
  host: string;
  /** repository path on that host: `library/busybox` */
  repository: string;
  tag?: string;
  digest?: string;
}

export function parseRemoteReference(input: string): RemoteReference {
  const r = parseReference(input);
  const slash = r.name.indexOf('/');
  const first = slash < 0 ? '' : r.name.slice(0, slash);
  if (slash < 0 || !(first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    throw new PierError(`${JSON.stringify(input)} names no registry: give host[:port]/repository[:tag]`);
  }
  return { host: first, repository: r.name.slice(slash + 1), tag: r.tag, digest: r.digest };
}

export function formatRemoteReference(r: RemoteReference): string {
  return formatReference({ name: `${r.host}/${r.repository}`, tag: r.tag, digest: r.digest });
}

/** Loopback hosts get plain HTTP without asking. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** A registry host as a user types it to login/logout (`https://` and trailing slashes dropped). */
export function parseRegistryHost(input: string): string {
  const host = input.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (!/^[A-Za-z0-9.\-[\]:]+$/.test(host)) throw new PierError(`${JSON.stringify(input)} is not a registry host`);
  return host;
}
