/** Log in: check the credentials against `/v2/` of the registry, then store them. */
import { AuthStore, type Credentials } from './auth-store.ts';
import { RegistryClient, type ClientOptions } from './client.ts';

export async function login(root: string, host: string, creds: Credentials, opts: Omit<ClientOptions, 'credentials'>): Promise<void> {
  const client = new RegistryClient(host, { ...opts, credentials: creds });
  try {
    await client.ping();
  } finally {
    client.close();
  }
  new AuthStore(root).set(host, creds);
}
