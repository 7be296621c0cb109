/**
 * The two ways the shim runs a container, behind one interface: pier's runtime library in-process
 * (the default) or an external runc-compatible binary in the foreground (`runc run`). Both keep the
 * container's init a child of something the shim waits on, which is how the exit status is known
 * without the shim being a subreaper (Node cannot prctl).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { childProcess } from '../../common/lazy.ts';
import { messageOf, PierError } from '../../common/errors.ts';
import { Logger } from '../../common/log.ts';
import { Runtime, exitStatus, oomCounterOf, readOomCounter, type Foreground, type OomCounter, type Process } from '../../runtime/index.ts';
import { closeQuietly, removeDir } from '../../common/fifo.ts';
import { execFailureCode, type ExecExit } from './protocol.ts';
import type { ShimConfig } from './types.ts';

/** A stdio slot of an exec'd process: an fd the runner hands over, or /dev/null. */
export type ExecSlot = number | 'ignore';

/** An exec'd process as a runner started it. */
export interface ExecHandle {
  /** the host pid once the process exists; 0 when it never did (then `exit` has the error) */
  started: Promise<number>;
  /** how it ended (or why it never ran) */
  exit: Promise<ExecExit>;
  /**
   * Settles once the process itself is gone. For runc that is before `exit`: runc returns only when
   * its pipes reach EOF, which a process left behind holding them puts off.
   */
  gone: Promise<void>;
}

/** The numbers `stats` reports (daemon/runtime.ts ContainerStats has the same shape). */
export interface RunnerStats { cpuNanos: number; memoryUsage: number; memoryLimit: number; pids: number }

const NO_LIMIT = 2 ** 62;

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
  /** Start `proc` in the running container; the runner closes the fds in `stdio` once they are handed over. */
  /** detach: the process's stdio is /dev/null and nothing waits on its output (runc: `exec -d`) */
  exec(proc: Process, stdio: [ExecSlot, ExecSlot, ExecSlot], opts?: { detach?: boolean }): ExecHandle;
  pause(): Promise<void>;
  resume(): Promise<void>;
  stats(): Promise<RunnerStats>;
}

function closeSlots(stdio: ExecSlot[]): void {
  for (const s of stdio) if (typeof s === 'number') closeQuietly(s);
}

/** Running and not yet reaped (a zombie has exited: its status is its parent's to collect). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch { return false; }
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

  /**
   * The runtime's exec in wait mode: pier-helper stays the process's parent and exits with its
   * status (with a terminal it also relays the pty master to its own stdio, our pipes).
   */
  exec(proc: Process, stdio: [ExecSlot, ExecSlot, ExecSlot]): ExecHandle {
    let pidOf!: (pid: number) => void;
    const started = new Promise<number>((r) => { pidOf = r; });
    let running: Promise<{ pid: number; exitCode?: number }>;
    try {
      // startHelper spawns synchronously inside exec(): by the time it returns our copies can go
      running = this.rt.exec(this.cfg.id, { process: proc, stdio, onPid: (pid) => pidOf(pid) });
    } catch (err) {
      running = Promise.reject(err);
    } finally {
      closeSlots(stdio);
    }
    const exit = running.then((r) => ({ exitCode: r.exitCode ?? 0 }), (err) => {
      const error = messageOf(err);
      return { exitCode: execFailureCode(error), error };
    });
    void exit.then(() => pidOf(0));
    return { started, exit, gone: exit.then(() => undefined) };
  }

  async pause(): Promise<void> { this.rt.pause(this.cfg.id); }
  async resume(): Promise<void> { this.rt.resume(this.cfg.id); }
  async stats(): Promise<RunnerStats> {
    const d = this.rt.stats(this.cfg.id).data;
    const limit = d.memory?.limit;
    return { cpuNanos: d.cpu?.usageNs ?? 0, memoryUsage: d.memory?.usage ?? 0, memoryLimit: limit && limit < NO_LIMIT ? limit : 0, pids: d.pids?.current ?? 0 };
  }
}

/** kill(2) that ignores a process already gone. */
function signalPid(pid: number, signal: number): void {
  try { process.kill(pid, signal); } catch { /* exited meanwhile */ }
}

// ---- an external runc-compatible binary ------------------------------------------------------

/**
 * Make the rootfs mounts in a mount namespace of runc's own, then exec runc there: unshare(1)
 * makes the namespace (all mounts private, so nothing propagates back to the host) and execs in
 * place, so the pid is still runc's; a short sh does the mounts with mount(8). The container
 * inherits that namespace; when runc and the container are gone, so are the mounts.
 */
const MOUNT_SCRIPT = [
  'set -e',
  'while [ "$1" != -- ]; do',
  '  if [ "$1" = overlay ]; then mount -t overlay overlay -o "$2" "$4"',
  '  else mount --bind "$2" "$4"; if [ "$3" = ro ]; then mount -o remount,bind,ro "$4"; fi; fi',
  '  shift 4',
  'done',
  'shift',
  'exec "$@"',
].join('\n');

export function inPrivateMounts(r: NonNullable<ShimConfig['rootfsMounts']>, binary: string, runArgs: string[]): [string, string[]] {
  const margs: string[] = [];
  for (const m of r.mounts) {
    const ro = m.options.includes('ro');
    const data = m.options.filter((o) => o !== 'rw' && o !== 'bind' && o !== 'rbind' && (m.type === 'overlay' || o !== 'ro'));
    margs.push(m.type, m.type === 'overlay' ? data.join(',') : m.source, ro ? 'ro' : 'rw', r.target);
  }
  return ['unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', MOUNT_SCRIPT, 'pier-rootfs', ...margs, '--', binary, ...runArgs]];
}

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
      const runArgs = [...this.base(), 'run', '--bundle', this.cfg.bundle, '--pid-file', pidFile, '--keep', this.cfg.id];
      const [file, args] = this.cfg.rootfsMounts ? inPrivateMounts(this.cfg.rootfsMounts, this.binary, runArgs) : [this.binary, runArgs];
      this.child = childProcess().spawn(file, args, {
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

  /**
   * `runc exec --process <file>` in the foreground: runc stays the process's parent and exits with
   * its status; the pid file appears once it runs. Without a terminal runc gives the process pipes
   * of its own and relays them to its stdio (our pipes). A terminal is refused: runc hands the pty
   * master out only over a console socket (see the constructor).
   */
  exec(proc: Process, stdio: [ExecSlot, ExecSlot, ExecSlot], opts: { detach?: boolean } = {}): ExecHandle {
    if (proc.terminal) {
      closeSlots(stdio);
      const error = 'exec with a terminal (-t) needs pier\'s own runtime: runc hands the pty out only over a console socket (SCM_RIGHTS), which Node cannot receive';
      return { started: Promise.resolve(0), exit: Promise.resolve({ exitCode: 126, error }), gone: Promise.resolve() };
    }
    const tmp = mkdtempSync(join(tmpdir(), 'pier-shim-exec-'));
    const pidFile = join(tmp, 'pid');
    const log = join(tmp, 'runtime.log');
    let child: ChildProcess;
    try {
      writeFileSync(join(tmp, 'process.json'), JSON.stringify(proc), { mode: 0o600 });
      child = childProcess().spawn(this.binary, ['--root', this.cfg.runtimeRoot, '--log', log, '--log-format', 'json', 'exec', ...(opts.detach ? ['--detach'] : []), '--process', join(tmp, 'process.json'), '--pid-file', pidFile, this.cfg.id], { stdio, cwd: '/' });
    } catch (err) {
      closeSlots(stdio);
      removeDir(tmp);
      const error = `cannot run ${this.binary}: ${messageOf(err)}`;
      return { started: Promise.resolve(0), exit: Promise.resolve({ exitCode: 126, error }), gone: Promise.resolve() };
    }
    closeSlots(stdio);
    let spawnError: Error | undefined;
    child.on('error', (err) => { spawnError = err; });
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    let pid = 0;
    let runcDone = false;
    void ended.then(() => { runcDone = true; });
    const started = (async () => {
      for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
        try { const t = readFileSync(pidFile, 'utf8').trim(); if (/^[0-9]+$/.test(t)) { pid = Number(t); return pid; } } catch { /* not yet */ }
        if (runcDone || spawnError) return 0;
        await sleep(delay);
      }
    })();
    // Node cannot wait on a process it did not start: look for it until it is gone.
    const gone = started.then(async (p) => {
      while (p > 0 && alive(p) && (opts.detach || !runcDone)) await sleep(opts.detach ? 200 : 50);
    });
    const exit = ended.then(async ({ code, signal }) => {
      const p = await started;
      try {
        const logged = runcLogError(log);
        if (spawnError) { const error = `cannot run ${this.binary}: ${spawnError.message}`; return { exitCode: 126, error }; }
        if (p === 0) {
          const error = logged || `${this.binary} exec exited with ${signal ?? `status ${code}`} before the process started`;
          return { exitCode: execFailureCode(error), error };
        }
        if (opts.detach) {
          // runc -d hands its own stdio (/dev/null) to the process and leaves it; the process is not
          // our child, so its status is lost (containerd's shim is a subreaper; Node cannot be)
          await gone;
          return { exitCode: -1, error: 'the exit code of a detached exec through a runc-compatible runtime is not known' };
        }
        return { exitCode: code ?? exitStatus(null, signal) };
      } finally {
        removeDir(tmp);
      }
    });
    return { started, exit, gone };
  }

  async pause(): Promise<void> { await this.runc(['pause', this.cfg.id]); }
  async resume(): Promise<void> { await this.runc(['resume', this.cfg.id]); }
  async stats(): Promise<RunnerStats> {
    const out = await new Promise<string>((resolve, reject) => {
      childProcess().execFile(this.binary, ['--root', this.cfg.runtimeRoot, 'events', '--stats', this.cfg.id], { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new PierError(String(stderr).trim().split('\n').pop() || err.message)); else resolve(stdout);
      });
    });
    const ev = JSON.parse(out) as { data?: { cpu?: { usage?: { total?: number } }; memory?: { usage?: { usage?: number; limit?: number } }; pids?: { current?: number } } };
    const limit = ev.data?.memory?.usage?.limit ?? 0;
    return { cpuNanos: ev.data?.cpu?.usage?.total ?? 0, memoryUsage: ev.data?.memory?.usage?.usage ?? 0, memoryLimit: limit < NO_LIMIT ? limit : 0, pids: ev.data?.pids?.current ?? 0 };
  }
}

/** The last error a runc-style JSON log holds, one line ('' when none). */
function runcLogError(file: string): string {
  let msg = '';
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as { level?: string; msg?: string };
        if ((e.level === 'error' || e.level === 'fatal') && e.msg) msg = e.msg;
      } catch { /* not JSON */ }
    }
  } catch { /* no log */ }
  return msg.replace(/\s*\n\s*/g, ' ');
}

export function makeRunner(cfg: ShimConfig, log: Logger): Runner {
  return cfg.runtime ? new RuncRunner(cfg) : new InProcessRunner(cfg, log);
}
