/**
 * TLS material for a registry host, laid out as docker's and podman's certs.d: in a host's
 * directory, every `*.crt` is a CA trusted on top of the system's roots, and a `*.cert` with the
 * `*.key` of the same name is a client certificate. Looked for in /etc/pier/certs.d/<host[:port]>
 * and $PIER_ROOT/certs.d/<host[:port]>, or in the one directory given with `--cert-dir`.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { PierError } from '../../common/errors.ts';

export const SYSTEM_CERTS_D = '/etc/pier/certs.d';

export interface TlsMaterial {
  /** PEM CA certificates to trust besides the system's */
  ca: string[];
  /** a client certificate and its key (PEM) */
  cert?: string;
  key?: string;
  /** the directories it came from, for messages */
  dirs: string[];
}

export function certDirsFor(root: string, host: string): string[] {
  return [join(SYSTEM_CERTS_D, host), join(root, 'certs.d', host)];
}

function readPem(path: string, kind: 'certificate' | 'key'): string {
  const pem = readFileSync(path, 'utf8');
  try {
    if (kind === 'certificate') new X509Certificate(pem);
    else createPrivateKey(pem);
  } catch {
    throw new PierError(`${path} is not a PEM ${kind}`);
  }
  return pem;
}

/**
 * What the directories hold, or undefined when none exists. An explicit directory (--cert-dir)
 * must exist. The first client pair in name order is used.
 */
export function loadTlsMaterial(dirs: string[], opts: { explicit?: boolean } = {}): TlsMaterial | undefined {
  const found: TlsMaterial = { ca: [], dirs: [] };
  for (const dir of dirs) {
    if (!existsSync(dir)) {
      if (opts.explicit) throw new PierError(`certificate directory ${dir} does not exist`);
      continue;
    }
    if (!statSync(dir).isDirectory()) throw new PierError(`certificate directory ${dir} is not a directory`);
    found.dirs.push(dir);
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (name.endsWith('.crt')) found.ca.push(readPem(path, 'certificate'));
      else if (name.endsWith('.cert') && found.cert === undefined) {
        const keyPath = join(dir, `${name.slice(0, -'.cert'.length)}.key`);
        if (!existsSync(keyPath)) throw new PierError(`client certificate ${path} has no key ${keyPath}`);
        found.cert = readPem(path, 'certificate');
        found.key = readPem(keyPath, 'key');
      } else if (name.endsWith('.key') && !existsSync(join(dir, `${name.slice(0, -'.key'.length)}.cert`))) {
        throw new PierError(`key ${path} has no client certificate ${name.slice(0, -'.key'.length)}.cert beside it`);
      }
    }
  }
  return found.dirs.length ? found : undefined;
}
