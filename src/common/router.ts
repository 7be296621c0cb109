/**
 * A small typed HTTP router with middleware, shared by pier's servers (pierd's API, the registry;
 * the cluster's API server next) so none hand-rolls its own path matching again.
 *
 * Patterns are literal segments and parameters: `:id` is one segment, `:name+` one or more (the
 * registry's repository names have slashes: `/v2/:name+/manifests/:ref`; the shortest that lets
 * the rest match wins), `:id?` as the last segment may be empty. Parameter names are typed from the
 * pattern. Values are percent-decoded (a malformed escape is a 400). A route may name the query
 * parameters it reads: anything else, or one given twice, is refused with a 400 naming it, so a typo
 * such as `forse=1` is not silently ignored.
 *
 * Routes are tried in the order they were added. A path some route matches with another method is
 * a 405 with the methods that would do, any other path a 404: `resolve()` tells which, and the
 * server turns it into its own error shape (a JSON message, a distribution-spec error, a Status).
 *
 * Middleware is `(ctx, next) => …` around the handler, outermost first (undici's and koa's shape):
 * observe, authenticate, fill a cache, then the route.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, decodePart } from './http-server.ts';

/** The parameter names of a pattern: `/a/:x/b/:y+` → 'x' | 'y'. */
export type ParamNames<P extends string> =
  P extends `${string}:${infer Rest}`
    ? Rest extends `${infer Name}/${infer Tail}` ? Strip<Name> | ParamNames<`/${Tail}`> : Strip<Rest>
    : never;
type Strip<N extends string> = N extends `${infer B}+` ? B : N extends `${infer B}?` ? B : N;
/** A middleware sees any route's: a plain record whose names may be absent. */
export type Params<P extends string> = string extends P ? Partial<Record<string, string>> : { [K in ParamNames<P>]: string };

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
}

export interface RouteContext<P extends string = string> extends RequestContext {
  params: Params<P>;
  query: URLSearchParams;
  route: RouteInfo;
}

export interface RouteInfo {
  method: string;
  pattern: string;
  /** The query parameters this route takes; undefined: any. */
  query?: readonly string[];
  /** Data the server attaches to a route (pierd: whether the handler reads the body). */
  meta: Record<string, unknown>;
}

/** X: what the server adds to every request's context (the registry: the caller's rights). */
export type Handler<P extends string, R, X = unknown> = (ctx: RouteContext<P> & X) => Promise<R> | R;
export type Middleware<R, X = unknown> = (ctx: RouteContext & X, next: () => Promise<R>) => Promise<R>;

interface Route<R, X> {
  info: RouteInfo;
  methods: Set<string> | '*';
  re: RegExp;
  names: string[];
  handler: Handler<string, R, X>;
}

export type Resolution<R, X = unknown> =
  | { kind: 'route'; route: Route<R, X>; params: Record<string, string> }
  | { kind: 'method'; allowed: string[] }
  | { kind: 'none' };

export interface RouteOptions {
  query?: readonly string[];
  meta?: Record<string, unknown>;
}

export class Router<R = unknown, X extends object = object> {
  private routes: Route<R, X>[] = [];
  private middleware: Middleware<R, X>[] = [];
  /** Prefixed to every pattern (pierd: `/v1`). */
  readonly prefix: string;

  constructor(opts: { prefix?: string } = {}) {
    this.prefix = opts.prefix ?? '';
  }

  use(mw: Middleware<R, X>): this {
    this.middleware.push(mw);
    return this;
  }

  /** A route; method '*' takes every method (the handler decides), or a list of them. */
  on<P extends string>(method: string | readonly string[], pattern: P, handler: Handler<P, R, X>, opts: RouteOptions = {}): this {
    const { re, names } = compilePattern(this.prefix + pattern);
    const methods = method === '*' ? '*' : new Set(typeof method === 'string' ? [method] : method);
    this.routes.push({
      info: { method: typeof method === 'string' ? method : method.join(','), pattern: this.prefix + pattern, ...(opts.query ? { query: opts.query } : {}), meta: opts.meta ?? {} },
      methods,
      re,
      names,
      handler: handler as unknown as Handler<string, R, X>,
    });
    return this;
  }

  /** Which route a request goes to, or whether its path is known with another method. */
  resolve(method: string, path: string): Resolution<R, X> {
    const allowed: string[] = [];
    for (const r of this.routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      if (r.methods === '*' || r.methods.has(method)) {
        const params: Record<string, string> = {};
        r.names.forEach((n, i) => { params[n] = decodePart(m[i + 1] ?? ''); });
        return { kind: 'route', route: r, params };
      }
      allowed.push(...r.methods);
    }
    return allowed.length ? { kind: 'method', allowed: [...new Set(allowed)] } : { kind: 'none' };
  }

  /**
   * Run a resolved route through the middleware: checks its query parameters first. The caller
   * resolves (to answer 404/405 in its own shape) and passes what resolve() found.
   */
  dispatch(base: RequestContext & X, found: Extract<Resolution<R, X>, { kind: 'route' }>): Promise<R> {
    const { route, params } = found;
    if (route.info.query) checkQuery(base.url.searchParams, route.info.query);
    const ctx = { ...base, params, query: base.url.searchParams, route: route.info } as RouteContext & X;
    const chain = this.middleware;
    const step = (i: number): Promise<R> => (i < chain.length ? chain[i](ctx, () => step(i + 1)) : Promise.resolve().then(() => route.handler(ctx)));
    return step(0);
  }

  /** The routes, for docs and tests. */
  list(): RouteInfo[] {
    return this.routes.map((r) => r.info);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `/v2/:name+/blobs/:digest` → a regex with one group per parameter. */
export function compilePattern(pattern: string): { re: RegExp; names: string[] } {
  const names: string[] = [];
  const parts = pattern.split('/');
  let src = '';
  parts.forEach((part, i) => {
    if (i === 0) { src += escapeRe(part); return; }
    const p = /^:(\w+)([+?]?)$/.exec(part);
    if (!p) { src += `/${escapeRe(part)}`; return; }
    if (names.includes(p[1])) throw new Error(`route ${pattern}: parameter ${p[1]} twice`);
    names.push(p[1]);
    if (p[2] === '+') src += '/(.+?)';
    else if (p[2] === '?') {
      if (i !== parts.length - 1) throw new Error(`route ${pattern}: only the last parameter may be optional`);
      src += '/([^/]*)';
    } else src += '/([^/]+)';
  });
  return { re: new RegExp(`^${src}$`), names };
}

/** Only the parameters a route reads, each at most once. */
export function checkQuery(q: URLSearchParams, allowed: readonly string[]): void {
  const seen = new Set<string>();
  for (const k of q.keys()) {
    if (!allowed.includes(k)) throw new HttpError(400, allowed.length ? `unknown query parameter ${JSON.stringify(k.slice(0, 100))} (this endpoint takes ${allowed.join(', ')})` : `unknown query parameter ${JSON.stringify(k.slice(0, 100))} (this endpoint takes none)`);
    if (seen.has(k)) throw new HttpError(400, `query parameter ${k} given more than once`);
    seen.add(k);
  }
}
