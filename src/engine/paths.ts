/**
 * Where the engine keeps things: persistent state under $PIER_ROOT (default /var/lib/pier, shared
 * with the image layer) and runtime state under $PIER_RUN (default /run/pier, gone at reboot).
 */
import { join } from 'node:path';

export interface EnginePaths {
  root: string;
  run: string;
  containers: string;
  volumes: string;
  socket: string;
  runtimeRoot: string;
  shims: string;
  daemonLog: string;
  pidFile: string;
}

export function enginePaths(opts: { root?: string; run?: string } = {}): EnginePaths {
  const root = opts.root ?? (process.env.PIER_ROOT || '/var/lib/pier');
  const run = opts.run ?? (process.env.PIER_RUN || '/run/pier');
  return {
    root,
    run,
    containers: join(root, 'containers'),
    volumes: join(root, 'volumes'),
    socket: join(run, 'pier.sock'),
    runtimeRoot: join(run, 'runtime'),
    shims: join(run, 'shims'),
    daemonLog: join(run, 'pierd.log'),
    pidFile: join(run, 'pierd.pid'),
  };
}
