/**
 * Registry credentials in `$PIER_ROOT/auth.json`, in docker's format:
 * `{"auths":{"host":{"auth":"base64(user:pass)"}}}`, mode 0600. Other keys in the file are kept.
 */
import { readFileSync, mkdirSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PierError, errnoOf } from '../../common/errors.ts';
import { writeFileAtomic } from '../../common/atomic.ts';

export interface Credentials {
  username: string;
  password: string;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; [k: string]: unknown }>;
  [k: string]: unknown;
}

export class AuthStore {
  readonly path: string;
  constructor(root: string) {
    this.path = join(root, 'auth.json');
  }

  private read(): AuthFile {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return {};
      throw err;
    }
    try {
      const v = JSON.parse(text) as unknown;
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      return v as AuthFile;
    } catch (err) {
      throw new PierError(`${this.path} is not valid JSON: ${(err as Error).message}`);
    }
  }

  get(host: string): Credentials | undefined {
    const auth = this.read().auths?.[host]?.auth;
    if (typeof auth !== 'string') return undefined;
    const plain = Buffer.from(auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon < 0) throw new PierError(`${this.path}: the credentials for ${host} are not base64 of user:password`);
    return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  }

  set(host: string, creds: Credentials): void {
    const file = this.read();
    file.auths = { ...(file.auths ?? {}), [host]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } };
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n', { fsync: true, mode: 0o600 });
    chmodSync(this.path, 0o600);
  }

  remove(host: string): boolean {
    const file = this.read();
    if (!file.auths?.[host]) return false;
    delete file.auths[host];
    writeFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n', { fsync: true, mode: 0o600 });
    return true;
  }
}
