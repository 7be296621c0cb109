/**
 * pierd's HTTP+JSON API on a unix socket (docs/engine-api.md). Thin: parse, check, call the Engine,
 * answer. Errors are `{"message": "..."}` with 400 (bad request), 404 (no such object), 409
 * (conflict), 413 (body too large) or 500.
 *
 * Nothing a client sends can end the daemon — it holds attached sessions, `logs -f` streams and
 * restart timers that a crash would lose. The request target is parsed in the one top-level error
 * path (a `%` or `http://[` is a 400), every JSON body is size-limited and checked against its
 * schema (api.ts), every query parameter a route reads is checked and an unknown one is refused,
 * and the server has the shared header and idle timeouts (src/common/http-server.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { PierError, messageOf } from '../../common/errors.ts';
import { HttpError, guardServer, guarded, longLived, readJson, requestUrl, serverOptions, type ServerLimits } from '../../common/http-server.ts';
import { compile } from '../../common/schema.ts';
import { Router } from '../../common/router.ts';
import { parseDurationNs } from '../../common/duration.ts';
import { parseSignal } from '../../runtime/index.ts';
import type { Socket } from 'node:net';
import { CreateRequestSchema, PodCreateSchema, ExecCreateSchema, ExecStartSchema, MAX_TIMEOUT_S, NetworkCreateSchema, VolumeCreateSchema, type StreamLine } from '../api.ts';
import { resolveUser } from '../../image/index.ts';
import { ShimClient } from '../shim/index.ts';
import { ExecService, hijacked } from './exec.ts';
import { readUpgradeBody } from './hijack.ts';
import { archiveIn, archiveOut, statPath } from './archive.ts';
import type { Engine } from './engine.ts';
import { ApiError } from './errors.ts';
import { BuildSandboxes } from './build-sandbox.ts';
import { eventLine, eventsOf, parseFilters, type EventBus } from './events.ts';

export const API_VERSION = 'v1';

/**
 * The largest JSON body: 4 MiB. The biggest is a create request, and what of it reaches the kernel
 * — the command and environment — execve limits to a quarter of the stack limit (2 MiB with the
 * usual 8 MiB); twice that leaves room for labels, mounts and JSON escaping. (Kubernetes' API server
 * allows 3 MiB per request.) An archive upload is a tar stream written to disk and has no limit.
 */
export const MAX_JSON_BODY = 4 * 1024 * 1024;

const createRequest = compile(CreateRequestSchema);
const networkCreate = compile(NetworkCreateSchema);
const podCreate = compile(PodCreateSchema);
const volumeCreate = compile(VolumeCreateSchema);
const execCreate = compile(ExecCreateSchema);
const execStart = compile(ExecStartSchema);

type Handler = (req: IncomingMessage, res: ServerResponse, m: string[], q: URLSearchParams) => Promise<unknown>;

/** A JSON body checked against its schema; an absent body is `{}` (all of them have optional fields only, or say what is missing). */
async function body<T>(req: IncomingMessage, checker: { check(v: unknown, what?: string): T }, what: string): Promise<T> {
  const value = await readJson(req, MAX_JSON_BODY);
  return checker.check(value === undefined ? {} : value, what);
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const text = value === undefined ? '' : JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Start an NDJSON answer; the writer waits while the client is not reading, so a slow reader holds
 * one buffer of lines in pierd, not the whole log.
 */
function streamStart(res: ServerResponse): (line: StreamLine) => Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  return async (line) => {
    if (res.write(`${JSON.stringify(line)}\n`) || res.destroyed) return;
    await drained(res);
  };
}

// ---- query parameters: each one a route reads is checked here, with a one-line 400 naming it ----

const bad = (k: string, v: string, want: string) => new HttpError(400, `query parameter ${k}: expected ${want}, not ${JSON.stringify(v.slice(0, 100))}`);

const flag = (q: URLSearchParams, k: string): boolean => {
  const v = q.get(k);
  if (v === null || v === '' || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  throw bad(k, v, '1, true, 0 or false');
};

/** Whole seconds (`t`): an integer from 0 to what a timer can hold. */
const seconds = (q: URLSearchParams, k: string): number | undefined => {
  const v = q.get(k);
  if (v === null) return undefined;
  if (!/^\d{1,7}$/.test(v) || Number(v) > MAX_TIMEOUT_S) throw bad(k, v, `whole seconds 0-${MAX_TIMEOUT_S}`);
  return Number(v);
};

/** `tail`: a number of lines, or `all`. */
const lines = (q: URLSearchParams, k: string): number | undefined => {
  const v = q.get(k);
  if (v === null || v === 'all') return undefined;
  if (!/^\d{1,15}$/.test(v)) throw bad(k, v, 'a number of lines >= 0 or "all"');
  return Number(v);
};

/** A terminal dimension (`h`, `w`): 1-65535, required. */
const dimension = (q: URLSearchParams, k: string): number => {
  const v = q.get(k);
  if (v === null) throw new HttpError(400, `query parameter ${k} is required`);
  if (!/^\d{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw bad(k, v, 'a terminal size 1-65535');
  return Number(v);
};

const signal = (q: URLSearchParams, k: string, dflt: string): string => {
  const v = q.get(k);
  if (v === null) return dflt;
  try { parseSignal(v); } catch { throw bad(k, v, 'a signal name or number'); }
  return v;
};

const time = (q: URLSearchParams, k: string, now = Date.now()): Date | undefined => {
  const v = q.get(k);
  if (v === null || v === '') return undefined;
  const t = parseTime(v, now);
  if (t === undefined) throw bad(k, v, 'an RFC 3339 time, unix seconds, or a duration like 10m');
  return t;
};

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?$/;

/**
 * A time as docker's `since`/`until` take it: unix seconds with an optional fraction
 * (`1700000000.5`; `0` is the epoch, as in docker, not a duration); a Go duration before now (`10m`,
 * `1h30m`); or RFC 3339 (`2024-05-01T10:00:00Z`, fraction and offset allowed) and docker's shorter
 * forms without a zone (`2024-05-01T10:00:00`, `2024-05-01`), which are local time. undefined when it
 * is none of these.
 */
export function parseTime(v: string, now = Date.now()): Date | undefined {
  const t = timeOf(v, now);
  return t && Number.isFinite(t.getTime()) ? t : undefined;
}

function timeOf(v: string, now: number): Date | undefined {
  if (/^\d{1,12}(\.\d{1,9})?$/.test(v)) return new Date(Number(v) * 1000);
  const ns = parseDurationNs(v);
  if (ns !== undefined) return new Date(now - ns / 1e6);
  const m = DATE_TIME.exec(v);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const [Y, MO, D, H, MI, S] = [y, mo, d, h, mi, s].map(Number);
  const daysIn = new Date(Date.UTC(Y, MO, 0)).getUTCDate();
  if (MO < 1 || MO > 12 || D < 1 || D > daysIn || H > 23 || MI > 59 || S > 59) return undefined;
  // A date-only value with a zone is docker's 2006-01-02Z07:00; a time without one is local.
  const ms = frac ? Math.floor(Number(`0${frac}`) * 1000) : 0;
  if (!zone) return new Date(Y, MO - 1, D, H, MI, S, ms);
  let offset = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const [oh, om] = zone.slice(1).split(':').map(Number);
    if (oh > 23 || om > 59) return undefined;
    offset = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return new Date(Date.UTC(Y, MO - 1, D, H, MI, S, ms) - offset);
}

export function createApiServer(engine: Engine, limits: Partial<ServerLimits> = {}): Server {
  const router = new Router<unknown>({ prefix: `/${API_VERSION}` });
  /**
   * A route: the query parameters it takes, and whether its handler reads the request body. Its
   * handler gets the path's parameters in order.
   */
  const on = (method: string, path: string, query: readonly string[], h: Handler, opts: { body?: boolean } = {}) => {
    router.on(method, path, (ctx) => h(ctx.req, ctx.res, Object.values(ctx.params) as string[], ctx.query), { query, meta: { body: opts.body ?? false } });
  };

  on('GET', '/_ping', [], async () => 'OK');
  on('GET', '/version', [], async () => ({ api: API_VERSION, node: process.versions.node, pid: process.pid }));

  // containers
  on('GET', '/containers', ['all'], async (_r, _s, _m, q) => engine.list(flag(q, 'all')));
  on('POST', '/containers', [], async (req) => {
    const c = await engine.create(await body(req, createRequest, 'container create'));
    return { id: c.id, name: c.name };
  }, { body: true });
  on('POST', '/containers/prune', [], async () => ({ removed: await engine.pruneContainers() }));
  on('GET', '/containers/:ref', [], async (_r, _s, m) => engine.get(m[0]));
  on('DELETE', '/containers/:ref', ['force', 'v'], async (_r, _s, m, q) => { await engine.remove(m[0], { force: flag(q, 'force'), volumes: flag(q, 'v') }); return {}; });
  on('POST', '/containers/:ref/start', ['attach'], async (_r, res, m, q) => {
    if (!flag(q, 'attach')) return engine.start(m[0]);
    // Start and stream this run's output, then its exit: one request, so nothing is missed.
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    const it = engine.runAttached(m[0], ac.signal)[Symbol.asyncIterator]();
    // The first step starts the container: a failure there is an ordinary error response.
    let step = await it.next();
    const write = streamStart(res);
    try {
      for (; !step.done; step = await it.next()) await write(step.value);
    } catch (err) {
      await write({ error: messageOf(err) });
    }
    res.end();
    return STREAMED;
  });
  on('POST', '/containers/:ref/stop', ['t'], async (_r, _s, m, q) => engine.stop(m[0], seconds(q, 't')));
  on('POST', '/containers/:ref/restart', ['t'], async (_r, _s, m, q) => engine.restart(m[0], seconds(q, 't')));
  on('POST', '/containers/:ref/kill', ['signal'], async (_r, _s, m, q) => { await engine.kill(m[0], signal(q, 'signal', 'SIGKILL')); return {}; });
  on('POST', '/containers/:ref/pause', [], async (_r, _s, m) => { await engine.pause(m[0]); return {}; });
  on('POST', '/containers/:ref/unpause', [], async (_r, _s, m) => { await engine.unpause(m[0]); return {}; });
  on('POST', '/containers/:ref/wait', [], async (_r, _s, m) => engine.wait(m[0]));
  on('GET', '/containers/:ref/top', [], async (_r, _s, m) => engine.top(m[0]));
  on('GET', '/containers/:ref/stats', [], async (_r, _s, m) => engine.stats(m[0]));
  on('GET', '/containers/:ref/logs', ['follow', 'tail', 'since', 'until'], async (_r, res, m, q) => {
    const now = Date.now();
    const tail = lines(q, 'tail');
    const since = time(q, 'since', now);
    const until = time(q, 'until', now);
    const opts = { follow: flag(q, 'follow'), ...(tail !== undefined ? { tail } : {}), ...(since ? { since } : {}), ...(until ? { until } : {}) };
    const ac = new AbortController();
    // Errors until here (a bad parameter, no such container) are ordinary answers; later ones go in-stream.
    const entries = engine.logs(m[0], { ...opts, signal: ac.signal });
    const write = streamStart(res);
    res.on('close', () => ac.abort());
    try {
      for await (const entry of entries) await write({ entry });
    } catch (err) {
      await write({ error: messageOf(err) });
    }
    res.end();
    return STREAMED;
  });
  // pier cp (archive.ts): through the container's fd-anchored scope, never a host path
  on('GET', '/containers/:ref/stat', ['path'], async (_r, _s, m, q) => statPath(engine, m[0], q.get('path')));
  on('GET', '/containers/:ref/archive', ['path', 'follow'], async (_r, res, m, q) => {
    await archiveOut(engine, m[0], q.get('path'), flag(q, 'follow'), res);
    return STREAMED;
  });
  on('PUT', '/containers/:ref/archive', ['path'], async (req, _s, m, q) => { await archiveIn(engine, m[0], q.get('path'), req); return {}; }, { body: true });

  // exec and attach (exec.ts): through the container's shim; the streams are hijacked connections
  // (hijack.ts), served by the upgrade routes below
  const execs = new ExecService({
    container: (ref) => engine.get(ref),
    shim: (info) => ShimClient.connect(info.shimSocket),
    resolveUser,
  });
  engine.on('event', (e: { type: string; id: string }) => { if (e.type === 'destroy') execs.dropContainer(e.id); });
  const needsUpgrade = (what: string) => new HttpError(400, `${what} streams on a hijacked connection: send Connection: Upgrade and Upgrade: tcp (or Detach)`);
  on('POST', '/containers/:ref/exec', [], async (req, _s, m) => execs.create(m[0], await body(req, execCreate, 'exec create')), { body: true });
  on('POST', '/exec/:id/start', [], async (req, _s, m) => {
    const b = await body(req, execStart, 'exec start');
    if (!b.Detach) throw needsUpgrade('exec start without Detach');
    await execs.startDetached(m[0], b);
    return {};
  }, { body: true });
  on('POST', '/exec/:id/resize', ['h', 'w'], async (_r, _s, m, q) => { await execs.resize(m[0], dimension(q, 'h'), dimension(q, 'w')); return {}; });
  on('GET', '/exec/:id/json', [], async (_r, _s, m) => execs.inspect(m[0]));
  on('POST', '/containers/:ref/attach', ['stream', 'stdin', 'stdout', 'stderr'], async () => { throw needsUpgrade('attach'); });
  // The hijacked routes: same paths, reached through node's 'upgrade' event (no ServerResponse).
  type Upgrade = { socket: Socket; rest: Buffer; value: unknown };
  const upgrades = new Router<void, Upgrade>({ prefix: `/${API_VERSION}` });
  upgrades.on('POST', '/exec/:id/start', async (ctx) => {
    const b = execStart.check(ctx.value === undefined ? {} : ctx.value, 'exec start');
    if (b.Detach) throw new HttpError(400, 'exec start with Detach is not a hijacked stream: send it without Connection: Upgrade');
    await execs.startAttached(ctx.params.id, b, ctx.socket, ctx.rest);
  }, { query: [] });
  upgrades.on('POST', '/containers/:ref/attach', async (ctx) => {
    const q = ctx.query;
    await execs.attach(ctx.params.ref, { stdin: flag(q, 'stdin'), stdout: q.has('stdout') ? flag(q, 'stdout') : true, stderr: q.has('stderr') ? flag(q, 'stderr') : true }, ctx.socket, ctx.rest);
  }, { query: ['stream', 'stdin', 'stdout', 'stderr'] });
  const onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => undefined);
    void hijacked(socket, async () => {
      const url = requestUrl(req, 'http://pierd');
      const found = upgrades.resolve(req.method ?? 'GET', url.pathname);
      if (found.kind !== 'route') {
        if (found.kind === 'method') throw new HttpError(405, `method not allowed: ${req.method} ${url.pathname.slice(0, 200)}`);
        throw new HttpError(404, `no hijacked stream at ${req.method} ${url.pathname.slice(0, 200)} (only exec start and attach upgrade)`);
      }
      const { value, rest } = await readUpgradeBody(socket, head, req.headers['content-length']);
      // the router's context wants a response; an upgraded request has none (the socket is the answer)
      await upgrades.dispatch({ req, res: undefined as unknown as ServerResponse, url, socket, rest, value }, found);
    });
  };

  // events (events.ts): held ones from `since`, then live ones until `until` or the client leaves
  const events = eventsOf(engine);
  on('GET', '/events', ['since', 'until', 'filters'], async (_r, res, _m, q) => {
    const now = Date.now();
    const since = time(q, 'since', now);
    const until = time(q, 'until', now);
    const filter = parseFilters(q.get('filters'));
    const sub = events.subscribe({ filter, ...(since ? { sinceMs: since.getTime() } : {}), ...(until ? { untilMs: until.getTime() } : {}) }, now);
    res.on('close', () => sub.close());
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.flushHeaders();
    for (;;) {
      const n = await sub.next();
      if ('end' in n) break;
      if ('error' in n) { res.write(`${JSON.stringify({ error: n.error })}\n`); break; }
      // A full socket buffer parks this loop; the subscription queues (bounded) meanwhile.
      if (!res.write(eventLine(n.event)) && !res.destroyed) await drained(res);
      if (res.destroyed) break;
    }
    sub.close();
    res.end();
    return STREAMED;
  });

  // images (pull, push, build and tag run in the CLI against the same store)
  // pods (daemon/pods/): the infra container holds the shared namespaces; rm takes everything it owns
  on('GET', '/pods', [], async () => engine.listPods());
  on('POST', '/pods', [], async (req) => engine.createPod(await body(req, podCreate, 'pod create')), { body: true });
  on('GET', '/pods/:ref', [], async (_r, _s, m) => engine.inspectPod(m[0]));
  on('POST', '/pods/:ref/start', [], async (_r, _s, m) => engine.startPod(m[0]));
  on('POST', '/pods/:ref/stop', ['t'], async (_r, _s, m, q) => engine.stopPod(m[0], seconds(q, 't')));
  on('DELETE', '/pods/:ref', ['force'], async (_r, _s, m, q) => ({ removed: await engine.removePod(m[0], { force: flag(q, 'force') }) }));

  on('GET', '/images', [], async () => engine.images.list());
  on('DELETE', '/images/:ref', ['force'], async (_r, _s, m, q) => {
    const ref = m[0];
    const img = await engine.images.resolve(ref).catch(() => undefined);
    if (img && !flag(q, 'force')) {
      const users = engine.records.all().filter((c) => c.imageId === img.configDigest);
      const refs = engine.images.refsFor(ref);
      if (users.length && refs.length <= 1) throw new ApiError(409, `image ${ref} is used by container ${users.map((c) => c.name).join(', ')}: remove it first or use --force`);
    }
    return engine.images.remove(ref);
  });

  // networks
  on('GET', '/networks', [], async () => engine.networks.list());
  on('POST', '/networks', [], async (req) => {
    const b = await body(req, networkCreate, 'network create');
    const n = engine.networks.create(b.name, { ...(b.subnet ? { subnet: b.subnet } : {}), ...(b.gateway ? { gateway: b.gateway } : {}), internal: b.internal ?? false, labels: b.labels ?? {} });
    networkEvent(events, 'create', n);
    return n;
  }, { body: true });
  /** Remove every user network no container is on (the default bridge stays); their names. */
  const pruneNetworks = (): string[] => {
    const removed: string[] = [];
    for (const n of engine.networks.list()) {
      if (n.name === 'bridge') continue;
      try { if (engine.networks.inspect(n.id).containers.length === 0) { engine.networks.remove(n.id); removed.push(n.name); networkEvent(events, 'destroy', n); } } catch { /* in use */ }
    }
    return removed;
  };
  on('POST', '/networks/prune', [], async () => ({ removed: pruneNetworks() }));
  on('GET', '/networks/:ref', [], async (_r, _s, m) => engine.networks.inspect(m[0]));
  on('DELETE', '/networks/:ref', [], async (_r, _s, m) => {
    const n = engine.networks.inspect(m[0]);
    engine.networks.remove(n.id);
    networkEvent(events, 'destroy', n);
    return {};
  });

  // network sandboxes lent to `pier build` for as long as the asking connection lasts (build-sandbox.ts)
  const builds = new BuildSandboxes(engine);
  on('POST', '/build/sandboxes', ['hostname'], async (_r, res, _m, q) => { await builds.open(res, q); return STREAMED; });
  on('DELETE', '/build/sandboxes/:id', [], async (_r, _s, m) => { await builds.release(m[0]); return {}; });

  // volumes
  on('GET', '/volumes', [], async () => engine.volumes.list());
  on('POST', '/volumes', [], async (req) => {
    const b = await body(req, volumeCreate, 'volume create');
    const existed = b.name !== undefined && engine.volumes.tryInspect(b.name) !== undefined;
    const v = engine.volumes.create(b.name, { labels: b.labels ?? {} });
    if (!existed) events.publish('volume', 'create', v.name, { driver: v.driver });
    return v;
  }, { body: true });
  const volumeDestroyed = (name: string) => events.publish('volume', 'destroy', name, { driver: 'local' });
  /** Remove every volume no container uses; their names. */
  const pruneVolumes = (): string[] => {
    const removed = engine.pruneVolumes();
    removed.forEach(volumeDestroyed);
    return removed;
  };
  on('POST', '/volumes/prune', [], async () => ({ removed: pruneVolumes() }));
  on('GET', '/volumes/:name', [], async (_r, _s, m) => engine.volumes.inspect(m[0]));
  on('DELETE', '/volumes/:name', [], async (_r, _s, m) => { engine.removeVolume(m[0]); volumeDestroyed(m[0]); return {}; });

  // system
  on('GET', '/system/df', [], async () => engine.df());
  on('POST', '/system/prune', ['volumes'], async (_r, _s, _m, q) => {
    const containers = await engine.pruneContainers();
    const networks = pruneNetworks();
    const volumes = flag(q, 'volumes') ? pruneVolumes() : [];
    const images = await engine.images.gc();
    return { containers, networks, volumes, images: { blobs: images.removed?.length ?? 0, snapshots: images.snapshots.length } };
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = requestUrl(req, 'http://pierd');
    const found = router.resolve(req.method ?? 'GET', url.pathname);
    if (found.kind !== 'route') {
      const known = found.kind === 'method';
      if (known) res.setHeader('allow', found.allowed.join(', '));
      send(res, known ? 405 : 404, { message: `${known ? 'method not allowed' : 'no such endpoint'}: ${req.method} ${url.pathname.slice(0, 200)}` });
      return;
    }
    // The idle timeout is for clients that stop sending. Once a request is whole, what keeps the
    // socket quiet is pierd's own work or a wait the client asked for — a stop's grace period, a
    // copy-up, `wait`, an attached run, `logs -f` on a quiet container — so it is lifted then.
    req.once('end', () => longLived(res));
    // A route without a body still has its (empty) request read to the end, so that happens.
    if (!found.route.info.meta.body) req.resume();
    const out = await router.dispatch({ req, res, url }, found);
    if (out === STREAMED) return;
    send(res, 200, out ?? {});
  };
  const onError = (err: unknown, req: IncomingMessage, res: ServerResponse) => {
    const status = err instanceof HttpError || err instanceof ApiError ? err.status : err instanceof PierError ? 400 : 500;
    if (status === 500) engine.log.error(`${req.method} ${(req.url ?? '').slice(0, 200)}: ${err instanceof Error ? err.stack : String(err)}`);
    if (res.headersSent) { res.end(); return; }
    // What is left of a refused body is read and dropped, so the answer reaches a client still sending.
    req.resume();
    send(res, status, { message: messageOf(err) });
  };
  const server = createServer(serverOptions(limits), guarded(handle, onError));
  server.on('upgrade', onUpgrade);
  return guardServer(server, limits);
}

const STREAMED = Symbol('streamed');

function drained(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => { res.off('drain', done); res.off('close', done); resolve(); };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** docker's network events carry the name and the driver. */
function networkEvent(events: EventBus, action: 'create' | 'destroy', n: { id: string; name: string }): void {
  events.publish('network', action, n.id, { name: n.name, type: 'bridge' });
}
