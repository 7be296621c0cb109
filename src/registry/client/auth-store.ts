/**
 * Registry credentials in `$PIER_ROOT/auth.json`, in docker's format:
 * `{"auths":{"host":{"auth":"base64(user:pass)"}}}`, mode 0600. Other keys in the file are kept.
 * As in docker's config.json, `credHelpers` (per host) or `credsStore` (every host) name a
 * credential helper instead: `docker-credential-<name>` on PATH, spoken to with its get/store/erase
 * protocol (the host on stdin; JSON `{ServerURL, Username, Secret}`), and then auths is not used.
 */
import { spawnSync } from 'node:child_process';
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
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

/** What a helper says when it has nothing for a host (docker-credential-helpers' wording). */
const NOT_FOUND = /credentials not found/i;

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

  /** The helper program for a host, when auth.json names one. */
  private helperFor(file: AuthFile, host: string): string | undefined {
    const name = file.credHelpers?.[host] ?? file.credsStore;
    if (name === undefined || name === '') return undefined;
    if (typeof name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(name)) throw new PierError(`${this.path}: ${JSON.stringify(name)} is not a credential helper name`);
    return `docker-credential-${name}`;
  }

  private helper(bin: string, verb: 'get' | 'store' | 'erase', input: string): { ok: boolean; out: string } {
    const r = spawnSync(bin, [verb], { input, encoding: 'utf8', timeout: 60_000 });
    if (r.error) {
      if (errnoOf(r.error) === 'ENOENT') throw new PierError(`credential helper ${bin} is not on PATH (auth.json names it)`);
      throw new PierError(`credential helper ${bin} ${verb}: ${r.error.message}`);
    }
    const out = `${r.stdout}`.trim();
    if (r.status === 0) return { ok: true, out };
    if (NOT_FOUND.test(out) || NOT_FOUND.test(r.stderr)) return { ok: false, out };
    const why = (r.stderr || out).trim().split('\n')[0] || `exit status ${r.status}`;
    throw new PierError(`credential helper ${bin} ${verb}: ${why}`);
  }

  get(host: string): Credentials | undefined {
    const file = this.read();
    const bin = this.helperFor(file, host);
    if (bin) {
      const r = this.helper(bin, 'get', host);
      if (!r.ok) return undefined;
      let v: { Username?: unknown; Secret?: unknown };
      try { v = JSON.parse(r.out) as typeof v; } catch { throw new PierError(`credential helper ${bin} get: the answer is not JSON`); }
      if (typeof v.Username !== 'string' || typeof v.Secret !== 'string') throw new PierError(`credential helper ${bin} get: the answer has no Username and Secret`);
      return { username: v.Username, password: v.Secret };
    }
    const auth = file.auths?.[host]?.auth;
    if (typeof auth !== 'string') return undefined;
    const plain = Buffer.from(auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon < 0) throw new PierError(`${this.path}: the credentials for ${host} are not base64 of user:password`);
    return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  }

  set(host: string, creds: Credentials): void {
    const file = this.read();
    const bin = this.helperFor(file, host);
    if (bin) {
      this.helper(bin, 'store', JSON.stringify({ ServerURL: host, Username: creds.username, Secret: creds.password }));
      return;
    }
    file.auths = { ...(file.auths ?? {}), [host]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } };
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n', { fsync: true, mode: 0o600 });
    chmodSync(this.path, 0o600);
  }

  remove(host: string): boolean {
    const file = this.read();
    const bin = this.helperFor(file, host);
    if (bin) {
      if (!this.helper(bin, 'get', host).ok) return false;
      this.helper(bin, 'erase', host);
      return true;
    }
    if (!file.auths?.[host]) return false;
    delete file.auths[host];
    writeFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n', { fsync: true, mode: 0o600 });
    return true;
  }
}
