/** Client options for a host: plain HTTP for loopback or when asked, credentials from auth.json. */
import { AuthStore } from './auth-store.ts';
import { isLoopbackHost } from './reference.ts';
import type { ClientOptions } from './client.ts';

export function clientOptionsFor(root: string, host: string, opts: { insecure?: boolean } = {}): ClientOptions {
  return { plainHttp: opts.insecure === true || isLoopbackHost(host), credentials: new AuthStore(root).get(host) };
}
