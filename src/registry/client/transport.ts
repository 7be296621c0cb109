/**
 * HTTP to one registry host over node:http/https, with the registry's auth challenges answered:
 * a 401 with `WWW-Authenticate: Basic` retries with the stored credentials; `Bearer realm,service,
 * scope` fetches a token from the realm (with basic credentials when logged in) and retries.
 * Bodies are given as a factory so a request can be sent again after a challenge.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { PierError } from '../../common/errors.ts';
import type { Credentials } from './auth-store.ts';
import { SYSTEM_CERTS_D, type TlsMaterial } from './certs.ts';
import { isFileBody, sendFileBody, type FileBody } from './native-io.ts';

/** A request body: bytes, a stream factory (called again when the request is re-sent), or a file range. */
export type Body = Buffer | (() => Readable) | FileBody;

export interface RequestOptions {
  method: string;
  /** a path (`/v2/…`) on this host, or an absolute URL (an upload location) */
  url: string;
  headers?: Record<string, string>;
  body?: Body;
  /** Content-Length for a stream body */
  length?: number;
  /** token scopes this request needs beyond what the challenge names (`repository:x:pull`) */
  scopes?: string[];
  /** follow redirects (GET/HEAD of blobs) */
  follow?: boolean;
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  /** the final URL (after redirects) */
  url: URL;
  stream: IncomingMessage;
  text(): Promise<string>;
  buffer(): Promise<Buffer>;
  /** drain and drop the body */
  discard(): Promise<void>;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse a WWW-Authenticate header: `Scheme k="v", k2=v2`. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2])) !== null) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  return { scheme: m[1].toLowerCase(), params };
}

/** Node's codes for a certificate the client could not verify. */
const TLS_TRUST_ERRORS = /SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE/;

export class Transport {
  readonly base: URL;
  readonly host: string;
  private creds: Credentials | undefined;
  private basic = false;
  private tokens = new Map<string, string>();
  private bearer: Challenge | undefined;
  /** this transport's own connections, so close() ends them and the process can exit at once */
  private readonly agent: HttpAgent;
  /** where the CAs came from (certs.d / --cert-dir), for a TLS failure's message */
  private readonly tlsDirs: string[];

  constructor(host: string, opts: { plainHttp: boolean; credentials?: Credentials; tls?: TlsMaterial }) {
    this.host = host;
    this.base = new URL(`${opts.plainHttp ? 'http' : 'https'}://${host}/`);
    this.creds = opts.credentials;
    const tls = opts.tls;
    this.tlsDirs = tls?.dirs ?? [];
    this.agent = opts.plainHttp ? new HttpAgent({ keepAlive: true, maxSockets: 16 }) : new HttpsAgent({
      keepAlive: true,
      maxSockets: 16,
      // `ca` replaces Node's roots, so the system's go in too: certs.d adds trust, it does not narrow it
      ...(tls?.ca.length ? { ca: [...rootCertificates, ...tls.ca] } : {}),
      ...(tls?.cert ? { cert: tls.cert, key: tls.key } : {}),
    });
  }

  /** One line for a failed request; a TLS failure says where trust comes from. */
  private failure(method: string, url: URL, err: NodeJS.ErrnoException): PierError {
    const what = `${method} ${url.origin}${url.pathname}`;
    if (url.protocol === 'https:' && TLS_TRUST_ERRORS.test(err.code ?? '')) {
      const where = this.tlsDirs.length ? `the CAs in ${this.tlsDirs.join(', ')} do not vouch for it` : `put its CA in ${SYSTEM_CERTS_D}/${url.host}/ca.crt or pass --cert-dir`;
      return new PierError(`${what}: the server's TLS certificate is not trusted (${err.message}): ${where}`, { cause: err });
    }
    if (url.protocol === 'https:' && err.code === 'EPROTO' && /wrong version number|packet length too long/i.test(err.message)) {
      return new PierError(`${what}: the server does not speak TLS (use --insecure for plain HTTP)`, { cause: err });
    }
    return new PierError(`${what}: ${err.message}`, { cause: err });
  }

  /** Close every connection (idle or still sending a body the server did not wait for). */
  close(): void {
    this.agent.destroy();
  }

  resolve(url: string): URL {
    return new URL(url, this.base);
  }

  private basicHeader(): string | undefined {
    return this.creds ? 'Basic ' + Buffer.from(`${this.creds.username}:${this.creds.password}`).toString('base64') : undefined;
  }

  private scopeKey(scopes: string[]): string {
    return [...new Set(scopes)].sort().join(' ');
  }

  private authHeader(url: URL, scopes: string[]): string | undefined {
    if (url.host !== this.base.host) return undefined;
    if (this.bearer) {
      const t = this.tokens.get(this.scopeKey(scopes));
      if (t) return `Bearer ${t}`;
    }
    if (this.basic) return this.basicHeader();
    return undefined;
  }

  async send(opts: RequestOptions): Promise<Response> {
    const scopes = opts.scopes ?? [];
    let url = this.resolve(opts.url);
    let challenged = false;
    for (let hop = 0; hop < 10; hop++) {
      const res = await this.once(opts, url, this.authHeader(url, scopes));
      if (res.status === 401 && !challenged && url.host === this.base.host) {
        const header = res.headers['www-authenticate'];
        const ch = parseChallenge(Array.isArray(header) ? header[0] : header ?? '');
        if (ch && (ch.scheme === 'basic' || ch.scheme === 'bearer')) {
          await res.discard();
          challenged = true;
          if (ch.scheme === 'basic') {
            if (!this.creds) throw new PierError(`UNAUTHORIZED: ${this.host} wants a login (pier login ${this.host})`);
            this.basic = true;
          } else {
            this.bearer = ch;
            const want = [...scopes, ...(ch.params.scope ? ch.params.scope.split(' ') : [])];
            const token = await this.fetchToken(ch, want);
            this.tokens.set(this.scopeKey(scopes), token);
          }
          continue;
        }
      }
      if (opts.follow && [301, 302, 303, 307, 308].includes(res.status) && res.headers.location) {
        await res.discard();
        url = new URL(res.headers.location, url);
        continue;
      }
      return res;
    }
    throw new PierError(`${opts.method} ${url.href}: too many redirects`);
  }

  private async fetchToken(ch: Challenge, scopes: string[]): Promise<string> {
    const realm = ch.params.realm;
    if (!realm) throw new PierError(`${this.host}: its Bearer challenge names no realm`);
    const u = new URL(realm);
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    for (const s of new Set(scopes)) u.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    const basic = this.basicHeader();
    if (basic) headers.authorization = basic;
    const res = await this.once({ method: 'GET', url: u.href, headers }, u, basic);
    const text = await res.text();
    if (res.status !== 200) {
      throw new PierError(`UNAUTHORIZED: token server ${u.origin} answered ${res.status}${this.creds ? '' : ` (pier login ${this.host})`}`);
    }
    let body: { token?: unknown; access_token?: unknown };
    try { body = JSON.parse(text) as typeof body; } catch { throw new PierError(`token server ${u.origin} answered no JSON`); }
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (!token) throw new PierError(`token server ${u.origin} answered no token`);
    return token;
  }

  private once(opts: RequestOptions, url: URL, auth: string | undefined): Promise<Response> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { 'user-agent': 'pier', ...(opts.headers ?? {}) };
      if (auth) headers.authorization = auth;
      const body = opts.body;
      if (Buffer.isBuffer(body)) headers['content-length'] = body.length;
      else if (isFileBody(body)) headers['content-length'] = body.length;
      else if (body && opts.length !== undefined) headers['content-length'] = opts.length;
      else if (!body && ['POST', 'PUT', 'PATCH'].includes(opts.method)) headers['content-length'] = 0;
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: opts.method, headers, agent: url.protocol === this.base.protocol ? this.agent : undefined }, (msg) => {
        const collect = async (): Promise<Buffer> => {
          const parts: Buffer[] = [];
          for await (const c of msg) parts.push(c as Buffer);
          return Buffer.concat(parts);
        };
        resolve({
          status: msg.statusCode ?? 0,
          headers: msg.headers,
          url,
          stream: msg,
          buffer: collect,
          text: async () => (await collect()).toString('utf8'),
          discard: async () => { msg.resume(); if (!msg.readableEnded) await new Promise<void>((r) => { msg.on('end', r); msg.on('error', () => r()); msg.on('close', r); }); },
        });
      });
      req.on('error', (err) => reject(this.failure(opts.method, url, err)));
      if (!body) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else if (isFileBody(body)) sendFileBody(req, body);
      else {
        const s = body();
        s.on('error', (err) => req.destroy(err));
        s.pipe(req);
      }
    });
  }
}
