/**
 * The two ways the shim runs a container, behind one interface: pier's runtime library in-process
 * (the default) or an external runc-compatible binary in the foreground (`runc run`). Both keep the
 * container's init a child of something the shim waits on, which is how the exit status is known
 * without the shim being a subreaper (Node cannot prctl).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { childProcess } from '../../common/lazy.ts';
import { messageOf, PierError } from '../../common/errors.ts';
import { Logger } from '../../common/log.ts';
import { Runtime, exitStatus, oomCounterOf, readOomCounter, type Foreground, type OomCounter } from '../../runtime/index.ts';
import { closeQuietly, removeDir } from '../../common/fifo.ts';
import type { ShimConfig } from './types.ts';

/** The container's ends of its stdio; a runner owns them and closes them once its child has them. */
export interface ContainerIO { stdin?: number; stdout: number; stderr: number }

export interface RunnerExit { exitCode: number; error?: string }

export interface Runner {
  /** Make the container (in-process: created, init blocked before exec). Resolves with the init's pid, 0 if not known before start. */
  create(io: ContainerIO): Promise<number>;
  /** Start it; resolves with the init's pid. On failure nothing of the container remains. */
  start(): Promise<number>;
  /**
   * Settles once a created container has ended: it ran and exited, it was aborted before start, or
   * its start failed (after the runner cleaned up). The shim listens only when that is news.
   */
  readonly exited: Promise<RunnerExit>;
  /** Signal the running init. */
  kill(signal: number): void;
  /** After exit: whether the memory cgroup OOM-killed something, then delete the container. */
  finish(): Promise<{ oomKilled: boolean; error?: string }>;
  /** End a created-but-not-started container (its init ignores signals until it execs) and remove it. */
  abort(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- pier's runtime, in-process --------------------------------------------------------------

/**
 * What `Runtime.run` does in the foreground, split so the shim learns the init's pid before exit
 * and can hold start back (deferStart): create in wait mode (pier-helper stays the init's parent and
 * exits with its status), then start. Signals are forwarded by the shim itself, not by run()'s
 * process-wide handlers (which would forward SIGHUP too).
 */
export class InProcessRunner implements Runner {
  private readonly cfg: ShimConfig;
  private readonly rt: Runtime;
  private readonly log: Logger;
  private fg: Foreground | undefined;
  private pid = 0;
  private oomBase = 0;
  private oom: OomCounter | undefined;
  private exitedResolve!: (e: RunnerExit) => void;
  readonly exited: Promise<RunnerExit>;

  constructor(cfg: ShimConfig, log: Logger) {
    this.cfg = cfg;
    this.log = log;
    this.rt = new Runtime({ root: cfg.runtimeRoot, log });
    this.exited = new Promise((r) => { this.exitedResolve = r; });
  }

  async create(io: ContainerIO): Promise<number> {
    try {
      const fg = await this.rt.createForeground({
        id: this.cfg.id,
        bundle: this.cfg.bundle,
        stdio: [io.stdin ?? 'ignore', io.stdout, io.stderr],
      });
      this.fg = fg;
      this.pid = fg.pid;
      void fg.exit.then((exitCode) => {
        // An init that failed after `ready` (e.g. exec) said why on the control socket.
        const late = exitCode !== 0 ? fg.lastError() : undefined;
        this.exitedResolve({ exitCode, ...(late ? { error: late } : {}) });
      }, (err) => this.exitedResolve({ exitCode: 1, error: messageOf(err) }));
    } finally {
      // pier-helper has its copies (or never will): ours would hide the container's EOF
      closeQuietly(io.stdin);
      closeQuietly(io.stdout);
      closeQuietly(io.stderr);
    }
    this.oom = oomCounterOf(this.pid);
    this.oomBase = readOomCounter(this.oom);
    return this.pid;
  }

  async start(): Promise<number> {
    try {
      await this.rt.start(this.cfg.id);
    } catch (err) {
      await this.abort();
      throw err;
    }
    return this.pid;
  }

  kill(signal: number): void {
    if (this.pid > 0) signalPid(this.pid, signal);
  }

  async finish(): Promise<{ oomKilled: boolean; error?: string }> {
    const oomKilled = readOomCounter(this.oom) > this.oomBase;
    try {
      await this.rt.delete(this.cfg.id, true);
      return { oomKilled };
    } catch (err) {
      return { oomKilled, error: `delete: ${messageOf(err)}` };
    }
  }

  async abort(): Promise<void> {
    await this.rt.delete(this.cfg.id, true).catch((err) => this.log.warn(`delete after failed start: ${messageOf(err)}`));
    if (this.fg) {
      this.fg.killHelper();
      await this.fg.exit.catch(() => undefined);
    }
  }
}

/** kill(2) that ignores a process already gone. */
function signalPid(pid: number, signal: number): void {
  try { process.kill(pid, signal); } catch { /* exited meanwhile */ }
}

// ---- an external runc-compatible binary ------------------------------------------------------

/**
 * `runc run` in the foreground: runc stays the init's parent and exits with its status. The start is
 * seen when runc writes --pid-file (it does so after the init exec'd); runc's own errors go to a
 * JSON --log file so they are not confused with the container's stderr. --keep leaves the cgroup
 * for the OOM check; the shim deletes the container afterwards.
 */
export class RuncRunner implements Runner {
  private readonly cfg: ShimConfig;
  private readonly binary: string;
  private readonly tmp: string;
  private io: ContainerIO | undefined;
  private child: ChildProcess | undefined;
  private pid = 0;
  /** runc run was spawned (only then is there anything to delete) */
  private spawned = false;
  private aborted = false;
  private oomFile: OomCounter | undefined;
  private oomBase = 0;
  private exitedResolve!: (e: RunnerExit) => void;
  readonly exited: Promise<RunnerExit>;

  constructor(cfg: ShimConfig) {
    if (cfg.tty) {
      throw new PierError('a terminal (tty) needs pier\'s own runtime: runc hands the pty out only over a console socket (SCM_RIGHTS), which Node cannot receive');
    }
    this.cfg = cfg;
    this.binary = cfg.runtime!;
    this.tmp = mkdtempSync(join(tmpdir(), 'pier-shim-runc-'));
    this.exited = new Promise((r) => { this.exitedResolve = r; });
  }

  private base(): string[] {
    return ['--root', this.cfg.runtimeRoot, '--log', join(this.tmp, 'runtime.log'), '--log-format', 'json'];
  }

  async create(io: ContainerIO): Promise<number> {
    this.io = io; // runc creates and starts in one step: nothing exists until start()
    return 0;
  }

  /** The last error runc logged, else its exit status. */
  private runcError(fallback: string): string {
    let msg: string | undefined;
    try {
      for (const line of readFileSync(join(this.tmp, 'runtime.log'), 'utf8').split('\n')) {
        if (!line) continue;
        try {
          const e = JSON.parse(line) as { level?: string; msg?: string };
          if (e.level === 'error' || e.level === 'fatal') msg = e.msg;
        } catch { /* not JSON */ }
      }
    } catch { /* no log */ }
    return (msg ?? fallback).replace(/\s*\n\s*/g, ' ');
  }

  async start(): Promise<number> {
    if (this.aborted || !this.io) throw new PierError('the container was stopped before it started');
    const io = this.io;
    this.io = undefined;
    this.spawned = true;
    const pidFile = join(this.tmp, 'init.pid');
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let spawnError: Error | undefined;
    try {
      this.child = childProcess().spawn(this.binary, [...this.base(), 'run', '--bundle', this.cfg.bundle, '--pid-file', pidFile, '--keep', this.cfg.id], {
        stdio: [io.stdin ?? 'ignore', io.stdout, io.stderr],
        cwd: '/',
      });
    } finally {
      closeQuietly(io.stdin);
      closeQuietly(io.stdout);
      closeQuietly(io.stderr);
    }
    const child = this.child;
    child.on('error', (err) => { spawnError = err; });
    const exited = new Promise<void>((resolve) => child.on('exit', (code, signal) => { exit = { code, signal }; resolve(); }));

    for (let delay = 1; ; delay = Math.min(delay * 2, 10)) {
      let text = '';
      try { text = readFileSync(pidFile, 'utf8').trim(); } catch { /* not yet */ }
      if (/^[0-9]+$/.test(text)) { this.pid = Number(text); break; }
      if (spawnError || exit) {
        const why = spawnError
          ? `cannot run ${this.binary}: ${spawnError.message}`
          : this.runcError(`${this.binary} run exited with ${exit!.signal ?? `status ${exit!.code}`} before the container started`);
        if (!spawnError) await this.runc(['delete', '--force', this.cfg.id]).catch(() => undefined);
        this.cleanupTmp();
        this.spawned = false;
        this.exitedResolve({ exitCode: exit?.code ?? 1, error: why });
        throw new PierError(why);
      }
      await Promise.race([sleep(delay), exited]);
    }
    this.findOomCounter();
    this.oomBase = this.readOom();
    void exited.then(() => {
      const code = exit!.code ?? exitStatus(null, exit!.signal);
      // runc exits 1 both for a container that exited 1 and for its own failure: only the latter logs an error
      const err = code !== 0 ? this.runcError('') : '';
      this.exitedResolve({ exitCode: code, ...(err ? { error: err } : {}) });
    });
    return this.pid;
  }

  /** Locate the memory cgroup's OOM kill counter from the init's /proc/<pid>/cgroup while it runs. */
  private findOomCounter(): void {
    this.oomFile = oomCounterOf(this.pid);
  }

  private readOom(): number {
    return readOomCounter(this.oomFile);
  }

  kill(signal: number): void {
    // the init, not runc: runc forwards most signals but SIGKILL would only kill runc
    if (this.pid > 0) signalPid(this.pid, signal);
  }

  private runc(args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      childProcess().execFile(this.binary, [...this.base(), ...args], { timeout: 30_000 }, (err, _out, stderr) => {
        if (err) reject(new PierError(this.runcError(String(stderr).trim() || err.message)));
        else resolve();
      });
    });
  }

  async finish(): Promise<{ oomKilled: boolean; error?: string }> {
    const oomKilled = this.readOom() > this.oomBase;
    if (!this.spawned) { this.cleanupTmp(); return { oomKilled }; }
    try {
      await this.runc(['delete', '--force', this.cfg.id]);
      return { oomKilled };
    } catch (err) {
      return { oomKilled, error: `delete: ${messageOf(err)}` };
    } finally {
      this.cleanupTmp();
    }
  }

  async abort(): Promise<void> {
    // deferred: runc run was never spawned, so there is nothing but our pipe ends
    this.aborted = true;
    closeQuietly(this.io?.stdin);
    closeQuietly(this.io?.stdout);
    closeQuietly(this.io?.stderr);
    this.io = undefined;
    if (!this.spawned) this.exitedResolve({ exitCode: 137 });
  }

  private cleanupTmp(): void {
    removeDir(this.tmp);
  }
}

export function makeRunner(cfg: ShimConfig, log: Logger): Runner {
  return cfg.runtime ? new RuncRunner(cfg) : new InProcessRunner(cfg, log);
}
