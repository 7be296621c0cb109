/**
 * Who may do what: htpasswd users (bcrypt `$2a$`/`$2b$`/`$2y$` and `{SHA}` hashes), an access file
 * granting per-repository actions by glob, and what each request needs (`repository:NAME:ACTION`).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import bcrypt from 'bcryptjs';
import { PierError } from '../../common/errors.ts';

export type Action = 'pull' | 'push' | 'delete';
const ACTIONS: readonly string[] = ['pull', 'push', 'delete'];

/** One needed or granted piece of access, as the token spec's `access` claim writes it. */
export interface Access {
  type: 'repository';
  name: string;
  actions: string[];
}

/** The reserved access-file key for requests without credentials. */
export const ANONYMOUS = 'anonymous';

/** An htpasswd file, re-read when its mtime changes. */
export class Htpasswd {
  private readonly path: string;
  private mtimeMs = -1;
  private users = new Map<string, string>();
  /** sha256(user, password, hash) of credentials already checked: bcrypt is slow on purpose */
  private readonly verified = new Set<string>();

  constructor(path: string) {
    this.path = path;
    this.reload();
  }

  private reload(): void {
    let st;
    try { st = statSync(this.path); } catch (err) { throw new PierError(`registry: cannot read htpasswd file ${this.path}: ${(err as Error).message}`); }
    if (st.mtimeMs === this.mtimeMs) return;
    const users = new Map<string, string>();
    readFileSync(this.path, 'utf8').split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new PierError(`registry: ${this.path}:${i + 1}: not USER:HASH`);
      const user = line.slice(0, colon), hash = line.slice(colon + 1);
      if (user === ANONYMOUS) throw new PierError(`registry: ${this.path}:${i + 1}: the user name ${ANONYMOUS} is reserved`);
      if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash) && !hash.startsWith('{SHA}')) {
        throw new PierError(`registry: ${this.path}:${i + 1}: user ${user}: only bcrypt (htpasswd -B) and {SHA} hashes are supported`);
      }
      users.set(user, hash);
    });
    this.users = users;
    this.mtimeMs = st.mtimeMs;
    this.verified.clear();
  }

  /** true when the password matches the user's hash */
  check(user: string, password: string): boolean {
    this.reload();
    const hash = this.users.get(user);
    if (hash === undefined) return false;
    const key = createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('hex');
    if (this.verified.has(key)) return true;
    let ok: boolean;
    if (hash.startsWith('{SHA}')) {
      const want = Buffer.from(hash.slice(5), 'base64');
      const got = createHash('sha1').update(password).digest();
      ok = want.length === got.length && timingSafeEqual(want, got);
    } else {
      ok = bcrypt.compareSync(password, hash);
    }
    if (ok) {
      if (this.verified.size > 1000) this.verified.clear();
      this.verified.add(key);
    }
    return ok;
  }
}

/** `user:password` from `Authorization: Basic …`, or undefined when the header is something else. */
export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') { re += '.*'; i++; } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

interface Rule { glob: string; actions: Set<string> }

/**
 * The access file: `{"USER" | "*" | "anonymous": {"GLOB": ["pull","push","delete" | "*"]}}`.
 * `*` is every authenticated user, `anonymous` requests without credentials; in a glob `*` matches
 * within one path component, `**` across them, and `${user}` is the user's name.
 */
export class AccessPolicy {
  private readonly rules = new Map<string, Rule[]>();

  constructor(rules: Map<string, Rule[]>) {
    this.rules = rules;
  }

  /** Every authenticated user may do everything; nobody else anything (no access file). */
  static allowAuthenticated(): AccessPolicy {
    return new AccessPolicy(new Map([['*', [{ glob: '**', actions: new Set(ACTIONS) }]]]));
  }

  static load(path: string): AccessPolicy {
    let doc: unknown;
    try { doc = JSON.parse(readFileSync(path, 'utf8')); } catch (err) { throw new PierError(`registry: access file ${path}: ${(err as Error).message}`); }
    return AccessPolicy.parse(doc, path);
  }

  static parse(doc: unknown, what = 'access file'): AccessPolicy {
    const bad = (why: string) => new PierError(`registry: ${what}: ${why}`);
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw bad('must be a JSON object of users');
    const rules = new Map<string, Rule[]>();
    for (const [who, grants] of Object.entries(doc as Record<string, unknown>)) {
      if (!grants || typeof grants !== 'object' || Array.isArray(grants)) throw bad(`${who}: must map repository globs to action lists`);
      const list: Rule[] = [];
      for (const [glob, actions] of Object.entries(grants as Record<string, unknown>)) {
        if (!Array.isArray(actions) || !actions.every((a) => typeof a === 'string' && (a === '*' || ACTIONS.includes(a)))) {
          throw bad(`${who}: ${glob}: actions must be a list of pull, push, delete or *`);
        }
        list.push({ glob, actions: new Set((actions as string[]).flatMap((a) => a === '*' ? ACTIONS : [a])) });
      }
      rules.set(who, list);
    }
    return new AccessPolicy(rules);
  }

  /** true when anonymous requests are granted anything at all */
  get anonymousAllowed(): boolean {
    return (this.rules.get(ANONYMOUS) ?? []).length > 0;
  }

  /** The actions `user` (undefined: anonymous) has on repository `name`. */
  granted(user: string | undefined, name: string): Set<string> {
    const out = new Set<string>();
    const sets = user === undefined ? [this.rules.get(ANONYMOUS)] : [this.rules.get(user), this.rules.get('*')];
    for (const rules of sets) {
      for (const r of rules ?? []) {
        const glob = user === undefined ? r.glob : r.glob.replaceAll('${user}', user);
        if (globToRegExp(glob).test(name)) for (const a of r.actions) out.add(a);
      }
    }
    return out;
  }

  /** Narrow requested access to what is granted (entries left with no action are dropped). */
  grant(user: string | undefined, want: Access[]): Access[] {
    const out: Access[] = [];
    for (const w of want) {
      const g = this.granted(user, w.name);
      const actions = w.actions.filter((a) => g.has(a));
      if (actions.length) out.push({ type: 'repository', name: w.name, actions });
    }
    return out;
  }
}

/** `repository:NAME:a,b` scopes (several may be space-separated in one string); other types are skipped. */
export function parseScopes(values: string[]): Access[] {
  const out: Access[] = [];
  for (const v of values) {
    for (const s of v.split(' ')) {
      const first = s.indexOf(':'), last = s.lastIndexOf(':');
      if (first < 0 || last === first) continue;
      if (s.slice(0, first) !== 'repository') continue;
      out.push({ type: 'repository', name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',').filter((a) => a !== '') });
    }
  }
  return out;
}

export function formatScopes(need: Access[]): string {
  return need.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' ');
}

/** true when `have` grants every action of every entry of `need` */
export function covers(have: Access[], need: Access[]): boolean {
  return need.every((n) => n.actions.every((a) => have.some((h) => h.type === n.type && h.name === n.name && (h.actions.includes(a) || h.actions.includes('*')))));
}

const NEED_ROUTE = /^\/v2\/(.+?)\/(?:blobs\/uploads\/[^/]*|blobs\/[^/]+|manifests\/[^/]+|tags\/list|referrers\/[^/]+)$/;

/**
 * What a request needs: GET/HEAD → pull, POST/PATCH/PUT → push, DELETE → delete. `/v2/` needs no
 * repository action (only a known caller). Undefined for paths that are not repository endpoints.
 *
 * A cross-repository mount (`POST …/blobs/uploads/?mount=D&from=R`) needs push on the target only:
 * whether the caller may also pull `R` decides whether it mounts or gets a plain upload session
 * (http.ts), never whether it is answered. distribution asks for pull on `from` here and so answers
 * 401 (containerd then retries without `from`); answering with a session instead costs the client no
 * second round trip and tells it no more: the choice depends on its own rights, not on storage.
 */
export function requiredAccess(method: string, url: URL): Access[] | undefined {
  const m = NEED_ROUTE.exec(url.pathname);
  if (!m) return undefined;
  const action: Action = method === 'GET' || method === 'HEAD' ? 'pull' : method === 'DELETE' ? 'delete' : 'push';
  return [{ type: 'repository', name: m[1], actions: [action] }];
}

/** The `from` of a cross-repository mount request, or undefined when the request is not one. */
export function mountSource(method: string, url: URL): string | undefined {
  if (method !== 'POST' || url.searchParams.get('mount') === null) return undefined;
  return url.searchParams.get('from') ?? undefined;
}
