/**
 * The engine's configuration, made once at the entry point (pierd's startDaemon, a test, a bench)
 * and handed down. Nothing below the entry reads the environment: what a test sets is what the
 * engine sees, and two engines in one process can differ.
 */
import { availableParallelism } from 'node:os';
import { PierError } from '../../common/errors.ts';

export interface EngineConfig {
  /** Log how long each step of create/start/exit took (bench work). */
  trace: boolean;
  /** The default network's bridge device and subnet (tests run a second engine beside a real one). */
  bridge?: string;
  bridgeSubnet?: string;
  /** CNI plugin directories, colon-separated. */
  cniPath?: string;
  /** Long-lived shim hosts (0: one shim process per container). */
  shimHosts: number;
  /** pier-init's binary when set explicitly (else found beside the build). */
  initBinary?: string;
}

export function defaultEngineConfig(): EngineConfig {
  return { trace: false, shimHosts: Math.min(4, availableParallelism()) };
}

/**
 * The configuration from pierd's environment: PIER_TRACE=1, PIER_BRIDGE, PIER_BRIDGE_SUBNET,
 * PIER_CNI_PATH, PIER_SHIM_HOSTS, PIER_INIT. A malformed value is refused by name.
 */
export function engineConfigFromEnv(env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const cfg = defaultEngineConfig();
  if (env.PIER_TRACE === '1') cfg.trace = true;
  if (env.PIER_BRIDGE) cfg.bridge = env.PIER_BRIDGE;
  if (env.PIER_BRIDGE_SUBNET) cfg.bridgeSubnet = env.PIER_BRIDGE_SUBNET;
  if (env.PIER_CNI_PATH) cfg.cniPath = env.PIER_CNI_PATH;
  if (env.PIER_INIT) cfg.initBinary = env.PIER_INIT;
  if (env.PIER_SHIM_HOSTS !== undefined && env.PIER_SHIM_HOSTS !== '') {
    if (!/^\d{1,3}$/.test(env.PIER_SHIM_HOSTS)) throw new PierError(`PIER_SHIM_HOSTS=${JSON.stringify(env.PIER_SHIM_HOSTS)}: give a number of shim hosts (0 for one shim per container)`);
    cfg.shimHosts = Number(env.PIER_SHIM_HOSTS);
  }
  return cfg;
}
