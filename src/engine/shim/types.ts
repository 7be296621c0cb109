/** The shim's configuration and the exit record it leaves behind (shared by the shim and pierd). */

export interface ShimConfig {
  /** container id = runtime id (64 hex) */
  id: string;
  /** OCI bundle dir (config.json written by pierd; may have process.terminal true) */
  bundle: string;
  /** state root for the runtime (e.g. /run/pier/runtime) */
  runtimeRoot: string;
  /** path of an external runc-compatible binary; absent → pier's runtime library in-process */
  runtime?: string;
  log: { path: string; /** bytes, 0 = no rotation */ maxSize: number; maxFiles: number };
  /** unix socket the shim listens on (attach/control) */
  socket: string;
  /** JSON ExitStatus written atomically when the container has exited */
  exitFile: string;
  /** keep a stdin pipe open for an attaching client (docker -i) */
  stdin: boolean;
  /** the container has a terminal (docker -t); must match process.terminal in config.json */
  tty: boolean;
  /**
   * Create the container but start it only when a client sends {"op":"start"} (ShimClient.start).
   * This is how a caller attaches before the first byte of output (docker run without -d).
   * spawnShim then resolves once the container is CREATED. With an external runtime the whole
   * `runc run` is deferred, so initPid is 0 until the start reply.
   */
  deferStart?: boolean;
  /** file the shim appends its own diagnostics to (it has no stderr once detached) */
  shimLog?: string;
  /**
   * A runc-compatible binary's rootfs as mounts (data): the shim makes them onto `target` in a
   * private mount namespace that `runc run` starts in, so the host never has them mounted.
   */
  rootfsMounts?: { target: string; mounts: { type: 'overlay' | 'bind'; source: string; options: string[] }[] };
}

export interface ExitStatus {
  /** shell-style: the exit code, or 128+n when killed by signal n */
  exitCode: number;
  signal?: string;
  oomKilled: boolean;
  startedAt: string;
  finishedAt: string;
  /** why the container could not run to completion or could not be cleaned up, one line */
  error?: string;
}

/** What a started shim reports (spawnShim, ShimHost.start, the start op). */
export interface StartResult { shimPid: number; initPid: number }
