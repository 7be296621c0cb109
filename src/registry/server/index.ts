/**
 * The registry server: `startRegistry({ listen, storage })` serves distribution-spec v1.1 over
 * HTTP or HTTPS from a storage directory, with optional auth (htpasswd Basic, or Bearer tokens from
 * the built-in issuer), an access log and `/metrics`; `gcRegistry` garbage-collects that directory.
 * Both listeners wear the shared guard rails (src/common/http-server.ts): a header timeout, an idle
 * timeout, header limits and an error path that always answers.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { PierError } from '../../common/errors.ts';
import { privateDir } from '../../common/statedir.ts';
import { guarded, guardServer, serverOptions, type ServerLimits } from '../../common/http-server.ts';
import { createHandler, serveMetrics } from './http.ts';
import { Gate, type AuthOptions } from './gate.ts';
import { AccessLog, Metrics } from './observe.ts';
import { FilesystemDriver, type StorageDriver } from './storage.ts';
import { RegistryStore } from './store.ts';
import { PullThrough, type ProxyOptions } from './proxy.ts';
import { collectRegistryGarbage, type GcOptions, type RegistryGcResult } from './gc.ts';

export { RegistryError, type ErrorCode } from './errors.ts';
export { FilesystemDriver, type StorageDriver, type FileInfo } from './storage.ts';
export { RegistryStore } from './store.ts';
export type { GcOptions, RegistryGcResult } from './gc.ts';
export type { AuthOptions } from './gate.ts';
export type { ProxyOptions } from './proxy.ts';
export { TokenKey, verifyToken, type Claims } from './token.ts';
export { AccessPolicy, Htpasswd } from './auth.ts';

export interface RegistryOptions {
  /** `HOST:PORT` (port 0 picks one) */
  listen: string;
  /** storage directory for the filesystem driver */
  storage?: string;
  /** or any driver */
  driver?: StorageDriver;
  /** auth: none when absent */
  auth?: AuthOptions;
  /** PEM certificate chain and key files: serve HTTPS */
  tls?: { cert: string; key: string };
  /** access log: a file to append to, a function, or false for none (default: none) */
  accessLog?: string | ((line: string) => void) | false;
  /** also serve `/metrics` (to anyone) on this `HOST:PORT` */
  metricsListen?: string;
  /** split referrers responses larger than this many bytes into pages (default: 4 MiB) */
  referrersPageBytes?: number;
  /** be a pull-through cache of another registry (proxy.ts) */
  proxy?: ProxyOptions;
  /**
   * Connection limits of both listeners (defaults: src/common/http-server.ts DEFAULT_LIMITS). The
   * whole-request deadline stays off whatever is given here: a blob body may take hours; a body that
   * stops moving is cut by the idle timeout instead.
   */
  limits?: Partial<Pick<ServerLimits, 'headersTimeoutMs' | 'idleTimeoutMs' | 'keepAliveTimeoutMs'>>;
}

export interface RunningRegistry {
  /** `http://host:port` or `https://…` */
  url: string;
  /** `http://host:port` of the --metrics-listen server */
  metricsUrl?: string;
  /** the auth gate (its token key signs test tokens) */
  gate?: Gate;
  metrics: Metrics;
  /** `host:port`, as image references name it */
  host: string;
  server: Server;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  if (!m) throw new PierError(`registry: --listen must be HOST:PORT, not ${JSON.stringify(listen)}`);
  const port = Number(m[3]);
  if (port > 65535) throw new PierError(`registry: port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function driverOf(opts: { storage?: string; driver?: StorageDriver }): StorageDriver {
  if (opts.driver) return opts.driver;
  if (!opts.storage) throw new PierError('registry: a storage directory is required');
  return new FilesystemDriver(opts.storage);
}

function readPem(path: string, what: string): Buffer {
  try { return readFileSync(path); } catch (err) { throw new PierError(`registry: cannot read TLS ${what} ${path}: ${(err as Error).message}`); }
}

async function listenOn(server: Server, listen: string): Promise<string> {
  const { host, port } = parseListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new PierError(`registry: cannot listen on ${listen}: ${err.message}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
}

/** The limits of `opts`, checked: a header timeout of 0 would reopen the slowloris hole. */
function limitsOf(opts: RegistryOptions): Partial<ServerLimits> {
  const l = opts.limits ?? {};
  for (const [k, v] of Object.entries(l)) {
    if (v === undefined) continue;
    if (!Number.isFinite(v) || v < 0 || (k === 'headersTimeoutMs' && v === 0)) throw new PierError(`registry: limits.${k} must be a ${k === 'headersTimeoutMs' ? 'positive' : 'non-negative'} number of milliseconds, not ${String(v)}`);
  }
  return { ...l, requestTimeoutMs: 0 };
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startRegistry(opts: RegistryOptions): Promise<RunningRegistry> {
  parseListen(opts.listen);
  const limits = limitsOf(opts);
  if (opts.metricsListen) parseListen(opts.metricsListen);
  const proxy = opts.proxy ? new PullThrough(opts.proxy) : undefined; // (checks the URL before anything is made)
  // Private repositories' blobs: the storage dir is the server's alone (0700, an older 0755 one too).
  if (!opts.driver && opts.storage) privateDir(opts.storage);
  const driver = driverOf(opts);
  const store = new RegistryStore(driver, { referrersPageBytes: opts.referrersPageBytes });
  const gate = Gate.create(opts.auth);
  const metrics = new Metrics();
  const accessLog = opts.accessLog ? new AccessLog(opts.accessLog) : undefined;
  const uploadsInProgress = async () => (await driver.list('_uploads')).length;
  const secure = opts.tls !== undefined;
  const handler = createHandler(store, { gate, metrics, accessLog, secure, uploadsInProgress, proxy });
  const server: Server = guardServer(opts.tls
    ? createHttpsServer({ ...serverOptions(limits), cert: readPem(opts.tls.cert, 'certificate'), key: readPem(opts.tls.key, 'key') }, handler) as unknown as Server
    : createServer(serverOptions(limits), handler), limits);
  const h = await listenOn(server, opts.listen);
  let metricsServer: Server | undefined;
  let metricsUrl: string | undefined;
  if (opts.metricsListen) {
    const fail = (_err: unknown, _req: unknown, res: ServerResponse) => { if (!res.headersSent) res.writeHead(500, { 'Content-Length': 0 }); res.end(); };
    metricsServer = guardServer(createServer(serverOptions(limits), guarded((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') { req.resume(); res.writeHead(404, { 'Content-Length': 0 }); res.end(); return; }
      return serveMetrics(req, res, metrics, uploadsInProgress);
    }, fail)), limits);
    try {
      metricsUrl = `http://${await listenOn(metricsServer, opts.metricsListen)}`;
    } catch (err) {
      await closeServer(server);
      throw err;
    }
  }
  return {
    url: `${secure ? 'https' : 'http'}://${h}`,
    host: h,
    metricsUrl,
    gate,
    metrics,
    server,
    close: async () => {
      await Promise.all([closeServer(server), metricsServer ? closeServer(metricsServer) : undefined]);
      await accessLog?.close();
      proxy?.close();
    },
  };
}

export async function gcRegistry(opts: { storage?: string; driver?: StorageDriver } & GcOptions): Promise<RegistryGcResult> {
  if (!opts.driver && opts.storage && !existsSync(opts.storage)) throw new PierError(`registry gc: storage directory ${opts.storage} does not exist`);
  return collectRegistryGarbage(driverOf(opts), opts);
}
