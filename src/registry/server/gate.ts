/**
 * The registry's door: no auth, Basic against an htpasswd file, or Bearer tokens from the built-in
 * issuer (`GET /token`). `check` answers who is asking or throws the spec's UNAUTHORIZED / DENIED
 * with the `WWW-Authenticate` challenge a client needs to get in.
 */
import type { IncomingMessage } from 'node:http';
import { PierError } from '../../common/errors.ts';
import { AccessPolicy, covers, formatScopes, Htpasswd, mountSource, parseBasic, parseScopes, requiredAccess, type Access } from './auth.ts';
import { RegistryError } from './errors.ts';
import { NAME_RE } from './store.ts';
import { TokenInvalid, TokenKey, verifyToken } from './token.ts';

export interface AuthOptions {
  /** htpasswd file (bcrypt or {SHA}): Basic auth, or the users of the token issuer */
  htpasswd?: string;
  /** access file (see AccessPolicy); without one every authenticated user may do everything */
  access?: string;
  /** serve `GET /token` and require its Bearer tokens on `/v2/` */
  tokenIssuer?: boolean;
  /** PEM EC P-256 private key for tokens; generated at start when absent */
  tokenKey?: string;
  /** the token `aud` and challenge `service` (default `pier-registry`) */
  service?: string;
  /** the token `iss` (default `pier-registry-token-issuer`) */
  issuer?: string;
  /** token lifetime in seconds (default 300, at least 60) */
  tokenTtl?: number;
  /** absolute token realm URL (default: this server's `/token`, from the request's Host) */
  realm?: string;
}

const DEFAULT_TTL = 300;
const MIN_TTL = 60;

/** Who sent a request that passed the gate. */
export interface Caller {
  /** undefined: anonymous */
  user?: string;
  /** what the request's Bearer token grants (token mode); undefined in Basic mode */
  access?: Access[];
}

export interface TokenAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** the user the token was issued to */
  user?: string;
}

export class Gate {
  readonly mode: 'basic' | 'token';
  private readonly users: Htpasswd | undefined;
  private readonly policy: AccessPolicy;
  private readonly key: TokenKey | undefined;
  readonly service: string;
  readonly issuer: string;
  private readonly ttl: number;
  private readonly realm: string | undefined;

  private constructor(opts: AuthOptions) {
    this.mode = opts.tokenIssuer ? 'token' : 'basic';
    this.users = opts.htpasswd ? new Htpasswd(opts.htpasswd) : undefined;
    this.policy = opts.access ? AccessPolicy.load(opts.access) : AccessPolicy.allowAuthenticated();
    this.service = opts.service ?? 'pier-registry';
    this.issuer = opts.issuer ?? 'pier-registry-token-issuer';
    this.ttl = Math.max(MIN_TTL, opts.tokenTtl ?? DEFAULT_TTL);
    this.realm = opts.realm;
    if (this.mode === 'token') {
      this.key = opts.tokenKey ? TokenKey.load(opts.tokenKey) : TokenKey.generate();
      if (!this.users && !this.policy.anonymousAllowed) throw new PierError('registry: --token-issuer needs --htpasswd, or an access file granting anonymous');
    } else {
      if (!this.users) throw new PierError('registry: Basic auth needs --htpasswd');
      if (opts.tokenKey) throw new PierError('registry: --token-key needs --token-issuer');
    }
  }

  /** undefined when no auth is configured */
  static create(opts: AuthOptions | undefined): Gate | undefined {
    if (!opts || (!opts.htpasswd && !opts.tokenIssuer && !opts.access)) return undefined;
    return new Gate(opts);
  }

  /** the issuer's signing key (tests sign their own tokens with it) */
  get tokenKey(): TokenKey | undefined {
    return this.key;
  }

  private realmOf(req: IncomingMessage, secure: boolean): string {
    return this.realm ?? `${secure ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}/token`;
  }

  private challenge(req: IncomingMessage, secure: boolean, need: Access[] | undefined, error?: { code: string; description: string }): string {
    if (this.mode === 'basic') return 'Basic realm="pier-registry", charset="UTF-8"';
    let h = `Bearer realm="${this.realmOf(req, secure)}",service="${this.service}"`;
    if (need?.length) h += `,scope="${formatScopes(need)}"`;
    if (error) h += `,error="${error.code}",error_description="${error.description.replace(/"/g, "'")}"`;
    return h;
  }

  private unauthorized(req: IncomingMessage, secure: boolean, need: Access[] | undefined, reason: string, error?: { code: string; description: string }): RegistryError {
    return new RegistryError('UNAUTHORIZED', 401, {
      message: reason,
      detail: need?.length ? need : undefined,
      headers: { 'WWW-Authenticate': this.challenge(req, secure, need, error) },
    });
  }

  /**
   * Who sends this request, when it may be served. Throws 401 UNAUTHORIZED (no or bad credentials,
   * a token that does not cover the request) or 403 DENIED (Basic user not allowed).
   */
  check(req: IncomingMessage, url: URL, secure: boolean): Caller {
    const method = req.method ?? 'GET';
    const need = requiredAccess(method, url);
    // A mount's challenge also names pull on `from`, so a client that asks for exactly what the
    // challenge says gets a token that can mount (the issuer grants it only when the policy does).
    // Only a valid name goes into the header: `from` is decoded from the query, quotes and all.
    const from = mountSource(method, url);
    const ask: Access[] | undefined = need && from !== undefined && from !== need[0].name && NAME_RE.test(from) ? [...need, { type: 'repository', name: from, actions: ['pull'] }] : need;
    const header = req.headers.authorization;
    if (this.mode === 'basic') {
      const basic = parseBasic(header);
      if (!basic) {
        if (need && covers(this.policy.grant(undefined, need), need)) return {};
        // the catalog lists what the caller may pull: anonymous callers may ask when anonymous may pull anything
        if (url.pathname === '/v2/_catalog' && this.policy.anonymousAllowed) return {};
        throw this.unauthorized(req, secure, ask, 'authentication required');
      }
      if (!this.users!.check(basic.user, basic.password)) throw this.unauthorized(req, secure, ask, 'invalid user name or password');
      if (need && !covers(this.policy.grant(basic.user, need), need)) {
        throw new RegistryError('DENIED', 403, { message: `${basic.user} may not ${formatScopes(need)}`, detail: need });
      }
      return { user: basic.user };
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) throw this.unauthorized(req, secure, ask, 'authentication required');
    let claims;
    try {
      claims = verifyToken(m[1], this.key!.publicKey, { issuer: this.issuer, audience: this.service });
    } catch (err) {
      if (!(err instanceof TokenInvalid)) throw err;
      throw this.unauthorized(req, secure, ask, err.message, { code: 'invalid_token', description: err.message });
    }
    if (need && !covers(claims.access, need)) {
      throw this.unauthorized(req, secure, ask, `the token does not grant ${formatScopes(need)}`, { code: 'insufficient_scope', description: 'the token does not grant the access this request needs' });
    }
    return { user: claims.sub === '' ? undefined : claims.sub, access: claims.access };
  }

  /**
   * May this request read `repo` with the credentials it carries (a mount's `from`)? A token counts
   * by its own grants, which may be narrower than the policy on purpose (a token for one repository
   * must not reach the owner's others); Basic credentials by the policy.
   */
  mayPullAs(caller: Caller, repo: string): boolean {
    const need: Access[] = [{ type: 'repository', name: repo, actions: ['pull'] }];
    if (this.mode === 'token') return covers(caller.access ?? [], need);
    return covers(this.policy.grant(caller.user, need), need);
  }

  /** May `user` (undefined: anonymous) pull from `repo`, by the access policy? (what the catalog lists) */
  mayPull(user: string | undefined, repo: string): boolean {
    const need: Access[] = [{ type: 'repository', name: repo, actions: ['pull'] }];
    return covers(this.policy.grant(user, need), need);
  }

  /** `GET /token?service=&scope=…[&account=]`: Basic credentials (or none, when anonymous access is configured). */
  token(req: IncomingMessage, url: URL): TokenAnswer {
    const json = (status: number, body: unknown, headers: Record<string, string> = {}): TokenAnswer =>
      ({ status, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers }, body: JSON.stringify(body) });
    const errorBody = (code: string, message: string, reason: string) => ({ errors: [{ code, message, detail: { reason } }] });
    if (req.method !== 'GET') return json(405, errorBody('UNSUPPORTED', 'the operation is unsupported', 'the token endpoint takes GET'));
    const service = url.searchParams.get('service');
    if (service !== null && service !== this.service) return json(400, errorBody('UNSUPPORTED', 'the operation is unsupported', `unknown service ${JSON.stringify(service)}`));
    const challenge = { 'WWW-Authenticate': 'Basic realm="pier-registry-token", charset="UTF-8"' };
    const basic = parseBasic(req.headers.authorization);
    let user: string | undefined;
    if (basic) {
      if (!this.users || !this.users.check(basic.user, basic.password)) return json(401, errorBody('UNAUTHORIZED', 'authentication required', 'invalid user name or password'), challenge);
      user = basic.user;
    } else if (!this.policy.anonymousAllowed) {
      return json(401, errorBody('UNAUTHORIZED', 'authentication required', 'credentials required'), challenge);
    }
    const want = parseScopes(url.searchParams.getAll('scope'));
    const access = this.policy.grant(user, want);
    const { token, claims } = this.key!.sign({ iss: this.issuer, sub: user ?? '', aud: this.service, access }, this.ttl);
    const answer = json(200, { token, access_token: token, expires_in: this.ttl, issued_at: new Date(claims.iat * 1000).toISOString() });
    answer.user = user;
    return answer;
  }
}
