/**
 * pierd: the engine daemon. Binds the API socket first (the bound socket is also the
 * one-daemon-at-a-time lock), then takes over the containers on disk, then serves. SIGTERM/SIGINT
 * stop the daemon only — containers keep running under their shims, as after a kill -9.
 */
import { chmodSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { Server } from 'node:http';
import { PierError, errnoOf, messageOf } from '../../common/errors.ts';
import { writeFileAtomic } from '../../common/atomic.ts';
import { Logger } from '../../common/log.ts';
import { enginePaths, type EnginePaths } from '../paths.ts';
import { Engine } from './engine.ts';
import { createApiServer } from './server.ts';
import type { ServerLimits } from '../../common/http-server.ts';
import { daemonConfigFiles, loadRuntimes } from './runtime.ts';
import { realClock } from '../../common/clock.ts';
import { HealthMonitor, attachHealth } from './health.ts';
import { runtimeProbeExec } from './probe-exec.ts';
import type { HealthState } from '../api.ts';
import { engineConfigFromEnv, type EngineConfig } from './config.ts';

export { Engine } from './engine.ts';
export { createApiServer, API_VERSION } from './server.ts';
export { parseRestartPolicy } from './restart.ts';
export { parseVolumeSpec } from './mounts.ts';

function alive(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socket);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function listen(server: Server, socket: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => { server.off('error', reject); resolve(); });
  });
}

/**
 * PIER_API_HEADER_TIMEOUT_MS and PIER_API_IDLE_TIMEOUT_MS shorten (or lengthen) the API's header and
 * idle timeouts, which default to the shared ones (src/common/http-server.ts); tests use them.
 */
function limitsFromEnv(): Partial<ServerLimits> {
  const out: Partial<ServerLimits> = {};
  for (const [name, key] of [['PIER_API_HEADER_TIMEOUT_MS', 'headersTimeoutMs'], ['PIER_API_IDLE_TIMEOUT_MS', 'idleTimeoutMs']] as const) {
    const v = process.env[name];
    if (v === undefined || v === '') continue;
    if (!/^\d{1,9}$/.test(v) || Number(v) < 100) throw new PierError(`${name}=${JSON.stringify(v)}: give milliseconds, at least 100`);
    out[key] = Number(v);
  }
  return out;
}

export interface Daemon {
  engine: Engine;
  server: Server;
  paths: EnginePaths;
  stop(): Promise<void>;
}

export async function startDaemon(opts: { paths?: EnginePaths; log?: Logger; config?: EngineConfig } = {}): Promise<Daemon> {
  const paths = opts.paths ?? enginePaths();
  const log = opts.log ?? new Logger();
  // the one place the engine's configuration comes from the environment
  const config = opts.config ?? engineConfigFromEnv();
  // daemon.json is read here, once: which runtimes containers may name is fixed for this daemon's life.
  const runtimes = loadRuntimes({ files: daemonConfigFiles(paths.root) });
  const engine = new Engine({ paths, log, runtimes, config });
  let ready!: () => void;
  const initialised = new Promise<void>((r) => { ready = r; });
  const api = createApiServer(engine, limitsFromEnv());
  // Requests wait for the takeover of existing containers; only the ping answers at once.
  const handler = api.listeners('request')[0] as (req: unknown, res: unknown) => void;
  api.removeAllListeners('request');
  api.on('request', (req: { url?: string }, res) => {
    if (req.url === '/v1/_ping') { handler(req, res); return; }
    void initialised.then(() => handler(req, res));
  });
  try {
    await listen(api, paths.socket);
  } catch (err) {
    if (errnoOf(err) !== 'EADDRINUSE') throw new PierError(`cannot listen on ${paths.socket}: ${messageOf(err)}`);
    if (await alive(paths.socket)) throw new PierError(`pierd is already running on ${paths.socket}`);
    rmSync(paths.socket, { force: true });
    await listen(api, paths.socket);
  }
  chmodSync(paths.socket, 0o660);
  writeFileAtomic(paths.pidFile, `${process.pid}\n`);
  try {
    await engine.init();
  } catch (err) {
    api.close();
    rmSync(paths.socket, { force: true });
    throw err;
  }
  // Health checks: probes through the runtime (probe-exec.ts), state into the record, status changes as events.
  const health = new HealthMonitor({
    exec: runtimeProbeExec((id) => engine.records.find(id), (id) => engine.records.dirOf(id)),
    clock: realClock,
    setHealth: (id, h) => setHealth(engine, id, h),
    // through the engine's emitter, as every container event goes (events.ts adds name, image, labels)
    onStatus: (id, status) => { engine.emit('event', { type: 'health_status', id, health: status }); },
  });
  attachHealth(engine, health);
  ready();
  log.info(`pierd ${process.pid} serving ${paths.socket} (runtimes: ${runtimes.names().join(', ')})`);
  const stop = async () => {
    health.close();
    await new Promise<void>((r) => { api.close(() => r()); api.closeAllConnections(); });
    await engine.close();
    rmSync(paths.socket, { force: true });
    rmSync(paths.pidFile, { force: true });
  };
  return { engine, server: api, paths, stop };
}

/**
 * The one place the health monitor writes a record: through records.update (under the container's
 * lock, on a copy). A container gone or no longer running keeps what it had.
 */
export async function setHealth(engine: Engine, id: string, health: HealthState): Promise<void> {
  await engine.update(id, (d) => {
    if (d.state.status === 'running') d.state.health = health;
  }).catch((err: unknown) => { if ((err as { status?: number }).status !== 404) throw err; });
}
