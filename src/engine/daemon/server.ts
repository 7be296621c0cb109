/**
 * pierd's HTTP+JSON API on a unix socket (docs/engine-api.md). Thin: parse, call the Engine, answer.
 * Errors are `{"message": "..."}` with 400 (bad request), 404 (no such object), 409 (conflict) or 500.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { spawn } from 'node:child_process';
import { basename, dirname } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { PierError, messageOf } from '../../common/errors.ts';
import { applyLayer } from '../../image/index.ts';
import type { CreateRequest, StreamLine } from '../api.ts';
import type { Engine } from './engine.ts';
import { ApiError } from './errors.ts';
import { BuildSandboxes } from './build-sandbox.ts';

export const API_VERSION = 'v1';

type Handler = (req: IncomingMessage, res: ServerResponse, m: string[], q: URLSearchParams) => Promise<unknown>;

async function body<T>(req: IncomingMessage): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {} as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new PierError('request body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const text = value === undefined ? '' : JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function streamStart(res: ServerResponse): (line: StreamLine) => void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  return (line) => { res.write(`${JSON.stringify(line)}\n`); };
}

const flag = (q: URLSearchParams, k: string) => q.get(k) === '1' || q.get(k) === 'true';
const num = (q: URLSearchParams, k: string): number | undefined => {
  const v = q.get(k);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new PierError(`query parameter ${k} must be a number, not ${JSON.stringify(v)}`);
  return n;
};

export function createApiServer(engine: Engine): Server {
  const routes: [string, RegExp, Handler][] = [];
  const on = (method: string, path: string, h: Handler) => {
    routes.push([method, new RegExp(`^/${API_VERSION}${path.replace(/:(\w+)/g, '([^/]+)')}$`), h]);
  };

  on('GET', '/_ping', async () => 'OK');
  on('GET', '/version', async () => ({ api: API_VERSION, node: process.versions.node, pid: process.pid }));

  // containers
  on('GET', '/containers', async (_r, _s, _m, q) => engine.list(flag(q, 'all')));
  on('POST', '/containers', async (req) => {
    const c = await engine.create(await body<CreateRequest>(req));
    return { id: c.id, name: c.name };
  });
  on('POST', '/containers/prune', async () => ({ removed: await engine.pruneContainers() }));
  on('GET', '/containers/:ref', async (_r, _s, m) => engine.get(m[0]));
  on('DELETE', '/containers/:ref', async (_r, _s, m, q) => { await engine.remove(m[0], { force: flag(q, 'force'), volumes: flag(q, 'v') }); return {}; });
  on('POST', '/containers/:ref/start', async (_r, res, m, q) => {
    if (!flag(q, 'attach')) return engine.start(m[0]);
    // Start and stream this run's output, then its exit: one request, so nothing is missed.
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    const it = engine.runAttached(m[0], ac.signal)[Symbol.asyncIterator]();
    // The first step starts the container: a failure there is an ordinary error response.
    let step = await it.next();
    const write = streamStart(res);
    try {
      for (; !step.done; step = await it.next()) write(step.value);
    } catch (err) {
      write({ error: messageOf(err) });
    }
    res.end();
    return STREAMED;
  });
  on('POST', '/containers/:ref/stop', async (_r, _s, m, q) => engine.stop(m[0], num(q, 't')));
  on('POST', '/containers/:ref/restart', async (_r, _s, m, q) => engine.restart(m[0], num(q, 't')));
  on('POST', '/containers/:ref/kill', async (_r, _s, m, q) => { await engine.kill(m[0], q.get('signal') ?? 'SIGKILL'); return {}; });
  on('POST', '/containers/:ref/pause', async (_r, _s, m) => { await engine.pause(m[0]); return {}; });
  on('POST', '/containers/:ref/unpause', async (_r, _s, m) => { await engine.unpause(m[0]); return {}; });
  on('POST', '/containers/:ref/wait', async (_r, _s, m) => engine.wait(m[0]));
  on('GET', '/containers/:ref/top', async (_r, _s, m) => engine.top(m[0]));
  on('GET', '/containers/:ref/stats', async (_r, _s, m) => engine.stats(m[0]));
  on('GET', '/containers/:ref/logs', async (_r, res, m, q) => {
    const opts = {
      follow: flag(q, 'follow'),
      ...(num(q, 'tail') !== undefined ? { tail: num(q, 'tail') } : {}),
      ...(q.get('since') ? { since: new Date(q.get('since')!) } : {}),
      ...(q.get('until') ? { until: new Date(q.get('until')!) } : {}),
    };
    const write = streamStart(res);
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    try {
      for await (const entry of engine.logs(m[0], { ...opts, signal: ac.signal })) write({ entry });
    } catch (err) {
      write({ error: messageOf(err) });
    }
    res.end();
    return STREAMED;
  });
  on('GET', '/containers/:ref/stat', async (_r, _s, m, q) => {
    const path = q.get('path');
    if (!path) throw new PierError('stat: give path');
    try {
      const st = statSync(engine.hostPath(m[0], path));
      return { exists: true, dir: st.isDirectory(), size: st.size, mode: st.mode };
    } catch (err) {
      if (err instanceof PierError) throw err;
      return { exists: false, dir: false, size: 0, mode: 0 };
    }
  });
  on('GET', '/containers/:ref/archive', async (_r, res, m, q) => {
    const path = q.get('path');
    if (!path) throw new PierError('archive: give path');
    const host = engine.hostPath(m[0], path);
    if (!existsSync(host)) throw new ApiError(404, `no such file or directory in container: ${path}`);
    res.writeHead(200, { 'content-type': 'application/x-tar' });
    const tar = spawn('tar', ['-C', dirname(host), '-cf', '-', '--', basename(host)], { stdio: ['ignore', 'pipe', 'ignore'] });
    tar.stdout.pipe(res);
    await new Promise((r) => tar.on('close', r));
    return STREAMED;
  });
  on('PUT', '/containers/:ref/archive', async (req, _s, m, q) => {
    const path = q.get('path');
    if (!path) throw new PierError('archive: give path');
    const host = engine.hostPath(m[0], path);
    if (!existsSync(host)) throw new ApiError(404, `destination directory does not exist in container: ${path}`);
    // The layer applier refuses entries that would leave the target (.. or symlinks out of it).
    await applyLayer(req, host, { format: 'apply' });
    return {};
  });

  // images (pull, push, build and tag run in the CLI against the same store)
  on('GET', '/images', async () => engine.images.list());
  on('DELETE', '/images/:ref', async (_r, _s, m, q) => {
    const ref = decodeURIComponent(m[0]);
    const img = await engine.images.resolve(ref).catch(() => undefined);
    if (img && !flag(q, 'force')) {
      const users = engine.records.all().filter((c) => c.imageId === img.configDigest);
      const refs = engine.images.refsFor(ref);
      if (users.length && refs.length <= 1) throw new ApiError(409, `image ${ref} is used by container ${users.map((c) => c.name).join(', ')}: remove it first or use --force`);
    }
    return engine.images.remove(ref);
  });

  // networks
  on('GET', '/networks', async () => engine.networks.list());
  on('POST', '/networks', async (req) => {
    const b = await body<{ name: string; subnet?: string; gateway?: string; internal?: boolean; labels?: Record<string, string> }>(req);
    if (!b.name) throw new PierError('network create: give a name');
    return engine.networks.create(b.name, { ...(b.subnet ? { subnet: b.subnet } : {}), ...(b.gateway ? { gateway: b.gateway } : {}), internal: b.internal ?? false, labels: b.labels ?? {} });
  });
  on('POST', '/networks/prune', async () => {
    const removed: string[] = [];
    for (const n of engine.networks.list()) {
      if (n.name === 'bridge') continue;
      try { if (engine.networks.inspect(n.id).containers.length === 0) { engine.networks.remove(n.id); removed.push(n.name); } } catch { /* in use */ }
    }
    return { removed };
  });
  on('GET', '/networks/:ref', async (_r, _s, m) => engine.networks.inspect(decodeURIComponent(m[0])));
  on('DELETE', '/networks/:ref', async (_r, _s, m) => { engine.networks.remove(decodeURIComponent(m[0])); return {}; });

  // network sandboxes lent to `pier build` for as long as the asking connection lasts (build-sandbox.ts)
  const builds = new BuildSandboxes(engine);
  on('POST', '/build/sandboxes', async (_r, res, _m, q) => { await builds.open(res, q); return STREAMED; });
  on('DELETE', '/build/sandboxes/:id', async (_r, _s, m) => { await builds.release(m[0]); return {}; });

  // volumes
  on('GET', '/volumes', async () => engine.volumes.list());
  on('POST', '/volumes', async (req) => {
    const b = await body<{ name?: string; labels?: Record<string, string> }>(req);
    return engine.volumes.create(b.name, { labels: b.labels ?? {} });
  });
  on('POST', '/volumes/prune', async () => ({ removed: engine.pruneVolumes() }));
  on('GET', '/volumes/:name', async (_r, _s, m) => engine.volumes.inspect(decodeURIComponent(m[0])));
  on('DELETE', '/volumes/:name', async (_r, _s, m) => { engine.removeVolume(decodeURIComponent(m[0])); return {}; });

  // system
  on('GET', '/system/df', async () => engine.df());
  on('POST', '/system/prune', async (_r, _s, _m, q) => {
    const containers = await engine.pruneContainers();
    const networks: string[] = [];
    for (const n of engine.networks.list()) {
      if (n.name === 'bridge') continue;
      try { if (engine.networks.inspect(n.id).containers.length === 0) { engine.networks.remove(n.id); networks.push(n.name); } } catch { /* in use */ }
    }
    const volumes = flag(q, 'volumes') ? engine.pruneVolumes() : [];
    const images = await engine.images.gc();
    return { containers, networks, volumes, images: { blobs: images.removed?.length ?? 0, snapshots: images.snapshots.length } };
  });

  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://pierd');
    const route = routes.find(([method, re]) => method === req.method && re.test(url.pathname));
    if (!route) {
      const known = routes.some(([, re]) => re.test(url.pathname));
      send(res, known ? 405 : 404, { message: `${known ? 'method not allowed' : 'no such endpoint'}: ${req.method} ${url.pathname}` });
      return;
    }
    const m = route[1].exec(url.pathname)!.slice(1).map(decodeURIComponent);
    route[2](req, res, m, url.searchParams).then((out) => {
      if (out === STREAMED) return;
      send(res, 200, out ?? {});
    }, (err: unknown) => {
      const status = err instanceof ApiError ? err.status : err instanceof PierError ? 400 : 500;
      if (status === 500) engine.log.error(`${req.method} ${url.pathname}: ${err instanceof Error ? err.stack : String(err)}`);
      if (res.headersSent) { res.end(); return; }
      send(res, status, { message: messageOf(err) });
    });
  });
}

const STREAMED = Symbol('streamed');

