/**
 * The distribution-spec v1.1 HTTP API on `node:http`: a small router over `RegistryStore`.
 * Every answer carries `Docker-Distribution-API-Version: registry/2.0`; errors are the spec's JSON.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FileHandle } from 'node:fs/promises';
import { messageOf } from '../../common/errors.ts';
import { guarded, HttpError, readBody, requestUrl } from '../../common/http-server.ts';
import { Router } from '../../common/router.ts';
import { RegistryError } from './errors.ts';
import { checkDigest, checkName, MAX_MANIFEST, type RegistryStore, type UploadState, type UploadBody } from './store.ts';

/** Tags one manifest PUT may carry as `?tag=` (the spec asks for at least 10). */
const MAX_TAG_PARAMS = 100;
import { isValidTag } from '../../image/index.ts';
import type { Caller, Gate } from './gate.ts';
import type { PullThrough } from './proxy.ts';
import { isLoopback, watch, type AccessLog, type Metrics } from './observe.ts';
import { sendBody, takeSocketBody } from './native-io.ts';

const INDEX_TYPE = 'application/vnd.oci.image.index.v1+json';

function uploadLocation(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

/** `Range: 0-<last byte>`; distribution answers `0-0` for an empty session, and so do we. */
function rangeHeader(offset: number): string {
  return `0-${Math.max(0, offset - 1)}`;
}

function send(res: ServerResponse, status: number, headers: Record<string, string | number>, body?: string | Buffer): void {
  const h: Record<string, string | number> = { 'Docker-Distribution-API-Version': 'registry/2.0', ...headers };
  if (body !== undefined && h['Content-Length'] === undefined) h['Content-Length'] = Buffer.byteLength(body);
  if (body === undefined && h['Content-Length'] === undefined) h['Content-Length'] = 0;
  res.writeHead(status, h);
  res.end(body);
}

/** Content-Range `<start>-<end>` (inclusive), as the spec's PATCH uses it. */
function parseContentRange(v: string | undefined): { start: number; end: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/\d+|\/\*)?$/.exec(v.trim());
  if (!m) throw new RegistryError('BLOB_UPLOAD_INVALID', 400, { message: `invalid Content-Range ${JSON.stringify(v)}` });
  const start = Number(m[1]), end = Number(m[2]);
  if (end < start) throw new RegistryError('BLOB_UPLOAD_INVALID', 400, { message: `invalid Content-Range ${JSON.stringify(v)}` });
  return { start, end };
}

export interface HandlerOptions {
  /** auth (none when absent) */
  gate?: Gate;
  metrics?: Metrics;
  accessLog?: AccessLog;
  /** served over TLS (for the token realm's scheme) */
  secure?: boolean;
  /** open upload sessions, for /metrics */
  uploadsInProgress?: () => Promise<number>;
  /** serve /metrics to loopback clients on this listener (default true) */
  metricsOnLoopback?: boolean;
  /** pull-through cache of another registry (proxy.ts) */
  proxy?: PullThrough;
}

/** The spec's error for anything a request failed with (a bare Error is a 500). */
function registryErrorOf(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  // the shared guard rails' errors (a malformed request target, a body over its limit)
  if (err instanceof HttpError) return new RegistryError(err.status === 413 ? 'SIZE_INVALID' : 'UNSUPPORTED', err.status, { message: err.message });
  return new RegistryError('UNSUPPORTED', 500, { message: `internal error: ${messageOf(err)}` });
}

function fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const e = registryErrorOf(err);
  if (!req.complete) req.resume();
  if (res.headersSent) { res.destroy(); return; }
  const body = req.method === 'HEAD' ? undefined : e.body();
  send(res, e.status, { 'Content-Type': 'application/json', ...e.headers, ...(body === undefined ? { 'Content-Length': Buffer.byteLength(e.body()) } : {}) }, body);
}

/**
 * Run `work` — the server's own, with the client waiting (an upstream fetch, re-hashing a large
 * session) — with the connection's idle timeout lifted: the timeout is for clients that stop moving
 * bytes, not for a server that is busy for them. Restored afterwards for the rest of the connection.
 */
export async function serverBusy<T>(res: ServerResponse, work: () => Promise<T>): Promise<T> {
  const sock = res.socket;
  const idle = sock?.timeout;
  if (sock && idle) sock.setTimeout(0);
  try {
    return await work();
  } finally {
    if (sock && idle && !sock.destroyed) sock.setTimeout(idle);
  }
}

/** `GET /metrics` in Prometheus text format. */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, metrics: Metrics, uploads: (() => Promise<number>) | undefined): Promise<void> {
  req.resume();
  if (req.method !== 'GET' && req.method !== 'HEAD') throw notAllowed(req.method ?? '', '/metrics');
  const body = metrics.render(uploads ? await uploads() : 0);
  send(res, 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(body) }, req.method === 'HEAD' ? undefined : body);
}

const STORES_BLOB = /^\/v2\/.+\/blobs\/uploads\/[^/]*$/;
const STORES_MANIFEST = /^\/v2\/.+\/manifests\/[^/]+$/;

export function createHandler(store: RegistryStore, opts: HandlerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const { gate, metrics, accessLog } = opts;
  const run = async (req: IncomingMessage, res: ServerResponse, ctx: { user?: string; stored?: 'blob' | 'manifest' }) => {
    // A target `new URL` cannot parse (`http://[`) or a stray `%` is a 400 in the spec's error JSON
    // (under distribution, Go's net/http answers both with a bare 400 before any handler runs).
    const url = requestUrl(req, 'http://registry.invalid');
    const method = req.method ?? 'GET';
    if (method === 'PUT' && STORES_MANIFEST.test(url.pathname)) ctx.stored = 'manifest';
    else if ((method === 'PUT' || method === 'POST') && STORES_BLOB.test(url.pathname) && url.searchParams.get('mount') === null) ctx.stored = 'blob';
    if (url.pathname === '/metrics' && metrics) {
      if (opts.metricsOnLoopback === false || !isLoopback(req.socket.remoteAddress)) {
        throw new RegistryError('DENIED', 403, { message: '/metrics is served to loopback clients only (or on --metrics-listen)' });
      }
      return serveMetrics(req, res, metrics, opts.uploadsInProgress);
    }
    if (gate?.mode === 'token' && url.pathname === '/token') {
      const a = gate.token(req, url);
      req.resume();
      ctx.user = a.user;
      if (a.status === 200) metrics?.tokenIssued();
      send(res, a.status, { ...a.headers, 'Content-Length': Buffer.byteLength(a.body) }, a.body);
      return;
    }
    const caller: Caller = gate ? gate.check(req, url, opts.secure ?? false) : {};
    ctx.user = caller.user;
    return handle(store, req, res, url, {
      proxy: opts.proxy,
      mayPull: (repo) => !gate || gate.mayPull(caller.user, repo),
      mayMountFrom: (repo) => !gate || gate.mayPullAs(caller, repo),
    });
  };
  // the one top-level error path: whatever a request throws or rejects with, it is answered
  return guarded((req, res) => {
    const ctx: { user?: string; stored?: 'blob' | 'manifest' } = {};
    if (metrics || accessLog) {
      metrics?.begin();
      watch(req, res, ctx, (r) => { metrics?.record(r); accessLog?.log(r); });
    }
    return run(req, res, ctx);
  }, (err, req, res) => fail(req, res, err));
}

/** What a request may see beyond the store: the cache's upstream, and what its caller may read. */
interface RequestScope {
  proxy?: PullThrough;
  /** may this caller pull from the repository, by the access policy (what the catalog lists) */
  mayPull: (repo: string) => boolean;
  /** may this request's credentials pull from the repository (a mount's `from`) */
  mayMountFrom: (repo: string) => boolean;
}

/** What every route sees: the store and this request's rights. */
interface RegistryContext extends RequestScope {
  store: RegistryStore;
}

/**
 * The distribution-spec endpoints. Repository names have slashes (`:name+`); a blob upload's
 * session id may be empty (`POST /v2/<name>/blobs/uploads/` starts one). Each handler takes every
 * method and refuses the ones its endpoint lacks with the spec's UNSUPPORTED.
 */
const routes = new Router<void, RegistryContext>()
  .use(async (ctx, next) => {
    if (ctx.params.name !== undefined) checkName(ctx.params.name);
    return next();
  })
  .use(async (ctx, next) => {
    // a pull-through cache fills itself first (routes say what: meta.fill); the ordinary handlers
    // then serve from it (the client waits meanwhile)
    const { proxy } = ctx;
    if (!proxy || ctx.params.name === undefined) return next();
    const method = ctx.req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw proxy.refuse(method);
    const { name, digest, ref } = ctx.params as { name: string; digest?: string; ref?: string };
    const fill = ctx.route.meta.fill;
    if (fill === 'blob') { const d = checkDigest(digest!).digest; await serverBusy(ctx.res, () => proxy.blob(ctx.store, name, d)); }
    if (fill === 'manifest' && (ref!.includes(':') || isValidTag(ref!))) await serverBusy(ctx.res, () => proxy.manifest(ctx.store, name, ref!));
    return next();
  })
  .on('*', '/v2/', ({ req, res }) => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw new RegistryError('UNSUPPORTED', 405, { message: `${method} /v2/ is not supported` });
    const body = '{}';
    send(res, 200, { 'Content-Type': 'application/json', 'Content-Length': body.length }, method === 'HEAD' ? undefined : body);
  })
  .on('*', '/v2/_catalog', (c) => catalog(c.store, c.req, c.res, c.query, c.mayPull))
  .on('*', '/v2/:name+/blobs/uploads/:id?', (c) => uploads(c.store, c.req, c.res, c.params.name, c.params.id, c.query, c.mayMountFrom))
  .on('*', '/v2/:name+/blobs/:digest', (c) => blobs(c.store, c.req, c.res, c.params.name, c.params.digest), { meta: { fill: 'blob' } })
  .on('*', '/v2/:name+/manifests/:ref', (c) => manifests(c.store, c.req, c.res, c.params.name, c.params.ref, c.query), { meta: { fill: 'manifest' } })
  .on('*', '/v2/:name+/tags/list', (c) => tagsList(c.store, c.req, c.res, c.params.name, c.query))
  .on('*', '/v2/:name+/referrers/:digest', (c) => referrers(c.store, c.req, c.res, c.params.name, c.params.digest, c.query));

async function handle(store: RegistryStore, req: IncomingMessage, res: ServerResponse, url: URL, scope: RequestScope): Promise<void> {
  const path = url.pathname === '/v2' ? '/v2/' : url.pathname;
  const found = routes.resolve(req.method ?? 'GET', path);
  if (found.kind !== 'route') throw new RegistryError('UNSUPPORTED', 404, { message: `no such endpoint: ${req.method ?? 'GET'} ${path}` });
  await routes.dispatch({ req, res, url, store, ...scope }, found);
}

/**
 * The request's body for an upload: taken off the connection by the addon when it is large and the
 * storage can take it that way (native-io.ts), else the request stream. Call it right when the body
 * is consumed.
 */
function bodyOf(store: RegistryStore, req: IncomingMessage, res: ServerResponse): UploadBody {
  return (store.driver.appendFromSocket ? takeSocketBody(req, res) : undefined) ?? req;
}

function notAllowed(method: string, what: string): RegistryError {
  return new RegistryError('UNSUPPORTED', 405, { message: `${method} is not supported on ${what}` });
}

async function blobs(store: RegistryStore, req: IncomingMessage, res: ServerResponse, name: string, ref: string): Promise<void> {
  const method = req.method ?? 'GET';
  const { digest } = checkDigest(ref);
  if (method === 'DELETE') {
    if (!(await store.unlinkBlob(name, digest))) throw new RegistryError('BLOB_UNKNOWN', 404, { detail: { digest } });
    send(res, 202, {});
    return;
  }
  if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method, 'blobs');
  const linked = await store.blobStat(name, digest);
  if (linked === undefined) throw new RegistryError('BLOB_UNKNOWN', 404, { detail: { digest } });
  // a GET opens the blob file (when the driver has files) before answering: the size is the open
  // file's, the body can go by sendfile, and a blob swept meanwhile is a clean 404, not a cut body
  let file: { fh: FileHandle; size: number } | undefined;
  if (method === 'GET' && linked > 0 && store.driver.open) {
    file = await store.openBlob(digest);
    if (!file) throw new RegistryError('BLOB_UNKNOWN', 404, { detail: { digest } });
  }
  try {
    await blobBody(store, req, res, digest, file?.size ?? linked, file?.fh);
  } catch (err) {
    await file?.fh.close().catch(() => {}); // (once the body is under way, sendBody owns and closes it)
    throw err;
  }
}

async function blobBody(store: RegistryStore, req: IncomingMessage, res: ServerResponse, digest: string, size: number, fh: FileHandle | undefined): Promise<void> {
  const method = req.method ?? 'GET';
  const base = { 'Docker-Content-Digest': digest, 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', ETag: `"${digest}"` };
  let range: { start: number; end: number } | undefined;
  const rh = req.headers.range;
  if (rh) {
    const r = /^bytes=(\d*)-(\d*)$/.exec(rh.trim());
    if (r && (r[1] !== '' || r[2] !== '')) {
      let start: number, end: number;
      if (r[1] === '') { start = Math.max(0, size - Number(r[2])); end = size - 1; } else { start = Number(r[1]); end = r[2] === '' ? size - 1 : Math.min(Number(r[2]), size - 1); }
      if (start >= size || end < start) {
        throw new RegistryError('SIZE_INVALID', 416, { message: `range ${rh} is not satisfiable for ${size} bytes`, headers: { 'Content-Range': `bytes */${size}` } });
      }
      range = { start, end };
    }
  }
  if (range) {
    const len = range.end - range.start + 1;
    res.writeHead(206, { 'Docker-Distribution-API-Version': 'registry/2.0', ...base, 'Content-Length': len, 'Content-Range': `bytes ${range.start}-${range.end}/${size}` });
  } else {
    res.writeHead(200, { 'Docker-Distribution-API-Version': 'registry/2.0', ...base, 'Content-Length': size });
  }
  if (method === 'HEAD' || size === 0) { await fh?.close(); res.end(); return; }
  if (fh) {
    const start = range?.start ?? 0;
    await sendBody(req, res, fh, start, (range?.end ?? size - 1) - start + 1);
    return;
  }
  const src = store.blobReader(digest, range);
  src.on('error', () => res.destroy());
  src.pipe(res);
}

async function uploads(store: RegistryStore, req: IncomingMessage, res: ServerResponse, name: string, id: string, q: URLSearchParams, mayMountFrom: (repo: string) => boolean): Promise<void> {
  const method = req.method ?? 'GET';
  if (id === '') {
    if (method !== 'POST') throw notAllowed(method, 'the upload endpoint');
    const mount = q.get('mount');
    if (mount !== null) {
      const { digest } = checkDigest(mount);
      const from = q.get('from');
      if (from !== null) checkName(from);
      // Mount only from the named repository, only when this request may pull it, and only when it
      // has the blob; anything else gets a plain upload session below (202), the same answer whether
      // or not the digest exists anywhere. Linking from the whole pool (which the spec allows without
      // `from`) would hand any pusher another tenant's private blob by its digest, and the 201 would
      // tell who stores what. Not without auth either: pier cannot see tenants that a proxy in front
      // of it separates by repository path, and distribution never mounts without `from`. The rights
      // are judged before storage is looked at, so neither the answer nor its timing tells more.
      if (from !== null && mayMountFrom(from) && (await store.blobStat(from, digest)) !== undefined) {
        req.resume();
        await store.linkBlob(name, digest);
        send(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
        return;
      }
    }
    const digestParam = q.get('digest');
    if (digestParam !== null) checkDigest(digestParam);
    const uuid = await store.createUpload(name);
    if (digestParam !== null) {
      await store.withLock(uuid, async () => {
        const st = await store.getUpload(name, uuid);
        await store.appendUpload(uuid, st, bodyOf(store, req, res), undefined, { save: false });
        const { digest } = checkDigest(digestParam);
        await serverBusy(res, () => store.commitUpload(name, uuid, digest));
        send(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
      });
      return;
    }
    let st = await store.getUpload(name, uuid);
    if (Number(req.headers['content-length'] ?? '0') > 0) st = await store.appendUpload(uuid, st, bodyOf(store, req, res));
    else req.resume();
    send(res, 202, { Location: uploadLocation(name, uuid), Range: rangeHeader(st.offset), 'Docker-Upload-UUID': uuid });
    return;
  }
  await store.withLock(id, async () => {
    const st = await store.getUpload(name, id);
    const loc = { Location: uploadLocation(name, id), 'Docker-Upload-UUID': id };
    const outOfOrder = (s: UploadState) => new RegistryError('BLOB_UPLOAD_INVALID', 416, {
      message: `chunk must start at offset ${s.offset}`, headers: { ...loc, Range: rangeHeader(s.offset) },
    });
    switch (method) {
      case 'GET':
        req.resume();
        send(res, 204, { ...loc, Range: rangeHeader(st.offset) });
        return;
      case 'DELETE':
        req.resume();
        await store.deleteUpload(id);
        send(res, 204, {});
        return;
      case 'PATCH': {
        const cr = parseContentRange(req.headers['content-range']);
        if (cr && cr.start !== st.offset) throw outOfOrder(st);
        const next = await store.appendUpload(id, st, bodyOf(store, req, res), cr ? cr.end - cr.start + 1 : undefined);
        send(res, 202, { ...loc, Range: rangeHeader(next.offset) });
        return;
      }
      case 'PUT': {
        const digestParam = q.get('digest');
        const { digest } = checkDigest(digestParam);
        const cr = parseContentRange(req.headers['content-range']);
        if (cr && cr.start !== st.offset) throw outOfOrder(st);
        if (Number(req.headers['content-length'] ?? '0') > 0 || req.headers['transfer-encoding']) await store.appendUpload(id, st, bodyOf(store, req, res), cr ? cr.end - cr.start + 1 : undefined, { save: false });
        else req.resume();
        // (a session without a live hash is re-hashed here: a while, for a large blob)
        await serverBusy(res, () => store.commitUpload(name, id, digest));
        send(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
        return;
      }
      default:
        throw notAllowed(method, 'an upload session');
    }
  });
}

async function manifests(store: RegistryStore, req: IncomingMessage, res: ServerResponse, name: string, ref: string, q: URLSearchParams): Promise<void> {
  const method = req.method ?? 'GET';
  if (ref.includes(':')) checkDigest(ref);
  else if (!isValidTag(ref)) throw new RegistryError('MANIFEST_INVALID', 400, { message: `invalid reference ${JSON.stringify(ref)}: not a tag or a digest`, detail: { reference: ref } });
  if (method === 'PUT') {
    // tags pushed with a manifest by digest (`?tag=a&tag=b`, distribution-spec 1.1+dev)
    const tagParams = q.getAll('tag');
    if (tagParams.length > 0 && !ref.includes(':')) throw new RegistryError('MANIFEST_INVALID', 400, { message: `tag parameters need a manifest pushed by digest, not by tag ${JSON.stringify(ref)}` });
    if (tagParams.length > MAX_TAG_PARAMS) throw new RegistryError('UNSUPPORTED', 414, { message: `${tagParams.length} tag parameters; at most ${MAX_TAG_PARAMS} per request` });
    const body = await readBody(req, MAX_MANIFEST, 'manifest'); // over the limit: 413 SIZE_INVALID
    const { digest, subject, tags } = await store.putManifest(name, ref, req.headers['content-type'] ?? '', body, tagParams);
    const h: Record<string, string> = { Location: `/v2/${name}/manifests/${digest}`, 'Docker-Content-Digest': digest };
    if (subject) h['OCI-Subject'] = subject;
    if (tagParams.length > 0) h['OCI-Tag'] = tags.join(', ');
    send(res, 201, h);
    return;
  }
  if (method === 'DELETE') {
    req.resume();
    if (!(await store.deleteManifest(name, ref))) throw new RegistryError('MANIFEST_UNKNOWN', 404, { detail: ref.includes(':') ? { Digest: ref } : { Tag: ref } });
    send(res, 202, {});
    return;
  }
  if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method, 'manifests');
  const rec = await store.resolveManifest(name, ref);
  if (!rec) throw new RegistryError(await store.repoExists(name) ? 'MANIFEST_UNKNOWN' : 'NAME_UNKNOWN', 404, { detail: ref.includes(':') ? { Digest: ref } : { Tag: ref } });
  const headers = { 'Content-Type': rec.mediaType, 'Docker-Content-Digest': rec.digest, ETag: `"${rec.digest}"`, 'Content-Length': rec.size };
  if (method === 'HEAD') { send(res, 200, headers); return; }
  const bytes = await store.readBlob(rec.digest);
  if (!bytes) throw new RegistryError('MANIFEST_UNKNOWN', 404, { detail: { Digest: rec.digest } });
  send(res, 200, headers, bytes);
}

/**
 * A sorted list paged as the spec pages tags: after `last`, at most `n`, with a `Link` to the next
 * page when more remain.
 */
function page(all: string[], q: URLSearchParams, path: string): { items: string[]; headers: Record<string, string> } {
  let items = all;
  const last = q.get('last');
  if (last !== null) items = items.filter((t) => t > last);
  const nRaw = q.get('n');
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (nRaw !== null) {
    if (!/^\d+$/.test(nRaw)) throw new RegistryError('UNSUPPORTED', 400, { message: `n must be a non-negative integer, not ${JSON.stringify(nRaw)}` });
    const n = Number(nRaw);
    if (items.length > n && n > 0) {
      items = items.slice(0, n);
      headers.Link = `<${path}?n=${n}&last=${encodeURIComponent(items[items.length - 1])}>; rel="next"`;
    } else items = items.slice(0, n);
  }
  return { items, headers };
}

async function tagsList(store: RegistryStore, req: IncomingMessage, res: ServerResponse, name: string, q: URLSearchParams): Promise<void> {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method, 'the tag list');
  if (!(await store.repoExists(name))) throw new RegistryError('NAME_UNKNOWN', 404, { detail: { name } });
  const { items, headers } = page(await store.tags(name), q, `/v2/${name}/tags/list`);
  const body = JSON.stringify({ name, tags: items });
  send(res, 200, { ...headers, 'Content-Length': Buffer.byteLength(body) }, method === 'HEAD' ? undefined : body);
}

/** `GET /v2/_catalog` (distribution's extension): the repositories the caller may pull, paged. */
async function catalog(store: RegistryStore, req: IncomingMessage, res: ServerResponse, q: URLSearchParams, mayPull: (repo: string) => boolean): Promise<void> {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method, 'the catalog');
  const { items, headers } = page((await store.repositories()).filter(mayPull), q, '/v2/_catalog');
  const body = JSON.stringify({ repositories: items });
  send(res, 200, { ...headers, 'Content-Length': Buffer.byteLength(body) }, method === 'HEAD' ? undefined : body);
}

async function referrers(store: RegistryStore, req: IncomingMessage, res: ServerResponse, name: string, ref: string, q: URLSearchParams): Promise<void> {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') throw notAllowed(method, 'referrers');
  const { digest } = checkDigest(ref);
  // digest order, so the `last` cursor of a next page is stable while referrers come and go
  let list = (await store.referrers(name, digest)).sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  const h: Record<string, string> = { 'Content-Type': INDEX_TYPE };
  const filter = q.get('artifactType');
  if (filter !== null) {
    list = list.filter((d) => d.artifactType === filter);
    h['OCI-Filters-Applied'] = 'artifactType';
  }
  const last = q.get('last');
  if (last !== null) list = list.filter((d) => d.digest > last);
  // the spec asks for a `Link` to the next page when the list does not fit in one manifest
  const head = JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [] });
  let bytes = Buffer.byteLength(head);
  const page: string[] = [];
  for (const d of list) {
    const one = JSON.stringify(d);
    if (page.length > 0 && bytes + Buffer.byteLength(one) + 1 > store.referrersPageBytes) {
      const next = new URLSearchParams(filter !== null ? { artifactType: filter } : {});
      next.set('last', list[page.length - 1].digest);
      h.Link = `</v2/${name}/referrers/${digest}?${next}>; rel="next"`;
      break;
    }
    page.push(one);
    bytes += Buffer.byteLength(one) + 1;
  }
  const body = `${head.slice(0, -3)}[${page.join(',')}]}`;
  send(res, 200, { ...h, 'Content-Length': Buffer.byteLength(body) }, method === 'HEAD' ? undefined : body);
}
