/**
 * The API server's HTTP front: Kubernetes paths through the shared router, each verb its own file
 * (verbs/), errors as `Status`, `as=Table` when kubectl asks, watches as chunked JSON lines. The
 * guard rails of every pier server (common/http-server.ts): header and idle timeouts, a body
 * limit (3 MiB, Kubernetes' own), one top-level error path — no request can end the process.
 * Plain HTTP on loopback for now; TLS and authentication come with `pier cluster up`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { messageOf } from '../../common/errors.ts';
import { HttpError, guardServer, guarded, longLived, readBody, requestUrl, serverOptions } from '../../common/http-server.ts';
import { Router, type RouteContext } from '../../common/router.ts';
import type { ApiContext, Target } from './context.ts';
import { VERSION, apiGroups, apiVersions, resourceList } from './discovery.ts';
import { kindByResource } from './kinds.ts';
import { StatusError, badRequest } from './status.ts';
import { toTable, wantsTable } from './table.ts';
import { create } from './verbs/create.ts';
import { get } from './verbs/get.ts';
import { list, type ListQuery } from './verbs/list.ts';
import { update } from './verbs/update.ts';
import { patch, patchTypeOf } from './verbs/patch.ts';
import { remove, removeCollection } from './verbs/delete.ts';
import { watch } from './verbs/watch.ts';

export const MAX_BODY = 3 * 1024 * 1024;

type Answer = { status: number; body: unknown } | 'streamed';

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const buf = await readBody(req, MAX_BODY);
  if (!buf.length) return undefined;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw badRequest(`the body is not JSON: ${messageOf(err)}`);
  }
}

const flag = (q: URLSearchParams, k: string) => q.get(k) === 'true' || q.get(k) === '1';

function listQuery(q: URLSearchParams): ListQuery {
  return { labelSelector: q.get('labelSelector'), fieldSelector: q.get('fieldSelector'), limit: q.get('limit'), continue: q.get('continue'), resourceVersion: q.get('resourceVersion') };
}

export function createApiServer(api: ApiContext): Server {
  const router = new Router<Answer>();
  const target = (group: string, version: string, resource: string, namespace?: string, name?: string): Target => {
    const kind = kindByResource(group, version, resource);
    if (!kind) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    if (namespace !== undefined && !kind.namespaced) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    return { kind, ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}) };
  };
  const now = () => api.clock.now();

  router.on('GET', '/version', () => ({ status: 200, body: VERSION }));
  router.on('GET', '/api', () => ({ status: 200, body: apiVersions() }));
  router.on('GET', '/apis', () => ({ status: 200, body: apiGroups() }));
  router.on('GET', '/api/v1', () => ({ status: 200, body: resourceList('', 'v1') }));
  router.on('GET', '/apis/:group/:version', ({ params }) => {
    const r = resourceList(params.group, params.version);
    if (!r) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    return { status: 200, body: r };
  });
  // an empty protobuf Document: kubectl then validates nothing itself and the server checks strictly
  router.on('GET', '/openapi/v2', ({ res }) => {
    res.writeHead(200, { 'content-type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'content-length': 0 });
    res.end();
    return 'streamed';
  });

  const collection = async (ctx: RouteContext, t: Target): Promise<Answer> => {
    const { req, query } = ctx;
    if (req.method === 'GET' && flag(query, 'watch')) return streamWatch(ctx, t);
    if (req.method === 'GET') {
      const l = await list(api, t, listQuery(query));
      return { status: 200, body: wantsTable(req.headers.accept) ? toTable(t.kind, l.items, l.metadata.resourceVersion, now(), l.metadata.continue) : l };
    }
    if (req.method === 'POST') return { status: 201, body: await create(api, t, await jsonBody(req)) };
    if (req.method === 'DELETE') {
      const items = await removeCollection(api, t, listQuery(query));
      return { status: 200, body: { apiVersion: t.kind.group ? `${t.kind.group}/${t.kind.version}` : t.kind.version, kind: `${t.kind.kind}List`, metadata: {}, items } };
    }
    throw new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  };

  const item = async (ctx: RouteContext, t: Target): Promise<Answer> => {
    const { req, query } = ctx;
    switch (req.method) {
      case 'GET': {
        const o = await get(api, t, query.get('resourceVersion'));
        return { status: 200, body: wantsTable(req.headers.accept) ? toTable(t.kind, [o], o.metadata?.resourceVersion, now()) : o };
      }
      case 'PUT': return { status: 200, body: await update(api, t, await jsonBody(req)) };
      case 'PATCH': {
        const type = patchTypeOf(req.headers['content-type']);
        const r = await patch(api, t, type, await jsonBody(req));
        return { status: r.created ? 201 : 200, body: r.obj };
      }
      case 'DELETE': return { status: 200, body: await remove(api, t, await jsonBody(req)) };
      default: throw new StatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    }
  };

  const streamWatch = async ({ req, res, query }: RouteContext, t: Target): Promise<Answer> => {
    const table = wantsTable(req.headers.accept);
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    const events = watch(api, t, { labelSelector: query.get('labelSelector'), fieldSelector: query.get('fieldSelector'), resourceVersion: query.get('resourceVersion'), allowWatchBookmarks: flag(query, 'allowWatchBookmarks') }, ac.signal);
    // errors before the first event are a normal Status answer (e.g. a bad selector)
    const first = await events.next();
    longLived(res);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const timeout = Number(query.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => ac.abort(), Math.min(timeout, 3600) * 1000) : undefined;
    const write = (e: { type: string; object: unknown }) => {
      const object = table && e.type !== 'ERROR' && e.type !== 'BOOKMARK' ? toTable(t.kind, [e.object as never], undefined, now()) : e.object;
      res.write(`${JSON.stringify({ type: e.type, object })}\n`);
    };
    try {
      if (!first.done) write(first.value);
      for await (const e of events) write(e);
    } catch (err) {
      if (!ac.signal.aborted) write({ type: 'ERROR', object: new StatusError(500, 'InternalError', messageOf(err)).toJSON() });
    } finally {
      if (timer) clearTimeout(timer);
      res.end();
    }
    return 'streamed';
  };

  // core group: /api/v1/...; named groups: /apis/<group>/<version>/...
  router.on('*', '/api/v1/namespaces/:ns/:resource/:name', (c) => item(c, target('', 'v1', c.params.resource, c.params.ns, c.params.name)));
  router.on('*', '/api/v1/namespaces/:ns/:resource', (c) => collection(c, target('', 'v1', c.params.resource, c.params.ns)));
  router.on('*', '/api/v1/:resource/:name', (c) => item(c, target('', 'v1', c.params.resource, undefined, c.params.name)));
  router.on('*', '/api/v1/:resource', (c) => collection(c, target('', 'v1', c.params.resource)));
  router.on('*', '/apis/:group/:version/namespaces/:ns/:resource/:name', (c) => item(c, target(c.params.group, c.params.version, c.params.resource, c.params.ns, c.params.name)));
  router.on('*', '/apis/:group/:version/namespaces/:ns/:resource', (c) => collection(c, target(c.params.group, c.params.version, c.params.resource, c.params.ns)));
  router.on('*', '/apis/:group/:version/:resource/:name', (c) => item(c, target(c.params.group, c.params.version, c.params.resource, undefined, c.params.name)));
  router.on('*', '/apis/:group/:version/:resource', (c) => collection(c, target(c.params.group, c.params.version, c.params.resource)));

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = requestUrl(req);
    const found = router.resolve(req.method ?? 'GET', url.pathname);
    if (found.kind !== 'route') throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    const a = await router.dispatch({ req, res, url }, found);
    if (a !== 'streamed') send(res, a.status, a.body);
  };
  const server = createServer(serverOptions(), guarded(handle, (err, _req, res) => {
    const s = err instanceof StatusError ? err : err instanceof HttpError ? new StatusError(err.status, err.status === 413 ? 'RequestEntityTooLarge' : 'BadRequest', err.message) : new StatusError(500, 'InternalError', messageOf(err));
    if (res.headersSent) { res.destroy(); return; }
    send(res, s.code, s.toJSON());
  }));
  return guardServer(server);
}
