/** How push, pull and login reach a registry: the flags they share and the client options they make. */
import { PierError } from '../common/errors.ts';
import { clientOptionsFor, type ClientOptions } from '../registry/index.ts';
import { bool, str, type FlagSpec, type Parsed } from './args.ts';

export const REGISTRY_FLAGS: FlagSpec[] = [
  { name: 'insecure' },
  { name: 'tls-verify', value: true },
  { name: 'cert-dir', value: true },
];

export const REGISTRY_USAGE = `  --insecure             plain HTTP (loopback hosts use it unless certs.d holds TLS material for them)
  --tls-verify=false     same as --insecure
  --cert-dir DIR         CA certificates (*.crt) and a client certificate (*.cert + *.key) for HTTPS
                         (default: /etc/pier/certs.d/HOST[:PORT] and $PIER_ROOT/certs.d/HOST[:PORT])
`;

export function registryOptions(p: Parsed, root: string, host: string, opts: { storedCredentials?: boolean } = {}): ClientOptions {
  const tlsVerify = str(p, 'tls-verify');
  if (tlsVerify !== undefined && tlsVerify !== 'true' && tlsVerify !== 'false') throw new PierError('--tls-verify takes true or false');
  return clientOptionsFor(root, host, { insecure: bool(p, 'insecure') || tlsVerify === 'false', certDir: str(p, 'cert-dir'), ...opts });
}
