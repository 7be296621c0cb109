/**
 * Client options for a host: credentials from auth.json; TLS material from certs.d (certs.ts);
 * plain HTTP when asked, or for a loopback host unless TLS material is set up for it.
 */
import { AuthStore } from './auth-store.ts';
import { certDirsFor, loadTlsMaterial } from './certs.ts';
import { isLoopbackHost } from './reference.ts';
import type { ClientOptions } from './client.ts';

/** With `storedCredentials: false` (login brings its own) the store, or its helper, is not asked. */
export function clientOptionsFor(root: string, host: string, opts: { insecure?: boolean; certDir?: string; storedCredentials?: boolean } = {}): ClientOptions {
  const tls = opts.certDir !== undefined ? loadTlsMaterial([opts.certDir], { explicit: true }) : loadTlsMaterial(certDirsFor(root, host));
  const plainHttp = opts.insecure === true || (isLoopbackHost(host) && !tls);
  const credentials = opts.storedCredentials === false ? undefined : new AuthStore(root).get(host);
  return { plainHttp, ...(credentials ? { credentials } : {}), ...(tls && !plainHttp ? { tls } : {}) };
}
