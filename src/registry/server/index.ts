/**
 * The registry server: `startRegistry({ listen, storage })` serves distribution-spec v1.1 over
 * plain HTTP from a storage directory; `gcRegistry` garbage-collects that directory.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { PierError } from '../../common/errors.ts';
import { mkdirp } from '../../common/atomic.ts';
import { createHandler } from './http.ts';
import { FilesystemDriver, type StorageDriver } from './storage.ts';
import { RegistryStore } from './store.ts';
import { collectRegistryGarbage, type GcOptions, type RegistryGcResult } from './gc.ts';

export { RegistryError, type ErrorCode } from './errors.ts';
export { FilesystemDriver, type StorageDriver, type FileInfo } from './storage.ts';
export { RegistryStore } from './store.ts';
export type { GcOptions, RegistryGcResult } from './gc.ts';

export interface RegistryOptions {
  /** `HOST:PORT` (port 0 picks one) */
  listen: string;
  /** storage directory for the filesystem driver */
  storage?: string;
  /** or any driver */
  driver?: StorageDriver;
}

export interface RunningRegistry {
  /** `http://host:port` */
  url: string;
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

export async function startRegistry(opts: RegistryOptions): Promise<RunningRegistry> {
  const { host, port } = parseListen(opts.listen);
  if (!opts.driver && opts.storage) mkdirp(opts.storage);
  const store = new RegistryStore(driverOf(opts));
  const server = createServer({ requestTimeout: 0 }, createHandler(store));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new PierError(`registry: cannot listen on ${opts.listen}: ${err.message}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const h = addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
  return {
    url: `http://${h}`,
    host: h,
    server,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

export async function gcRegistry(opts: { storage?: string; driver?: StorageDriver } & GcOptions): Promise<RegistryGcResult> {
  if (!opts.driver && opts.storage && !existsSync(opts.storage)) throw new PierError(`registry gc: storage directory ${opts.storage} does not exist`);
  return collectRegistryGarbage(driverOf(opts), opts);
}
