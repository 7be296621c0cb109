/**
 * Where the engine keeps things: persistent state under $PIER_ROOT (default /var/lib/pier, shared
 * with the image layer) and runtime state under $PIER_RUN (default /run/pier, gone at reboot).
 */
import { join } from 'node:path';
import { privateDir } from '../common/statedir.ts';

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

/**
 * Make every state dir the engine owns, root-only (0700), or take an existing one (made 0755 by an
 * older pier) down to it: the daemon's start closes an upgraded install without a wipe. Nothing
 * non-root needs to traverse them: container processes reach volumes and their rootfs through the
 * runtime's bind mounts, not through these paths, and the API socket is root's (0660 root:root).
 */
export function makeStateDirs(p: EnginePaths): void {
  for (const d of [p.root, p.containers, p.volumes, join(p.root, 'networks'), p.run, p.shims, p.runtimeRoot]) privateDir(d);
}
