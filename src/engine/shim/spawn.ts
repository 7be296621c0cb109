/**
 * Starting shims from pierd: spawnShim (one fresh process per container) and the idle pool
 * (startIdleShim → IdleShim.start), which hides Node's start-up behind an already running process.
 * A shim is spawned detached (own session, stdio on /dev/null) with one extra pipe on its fd 3 for
 * its start report; pierd can die at any point after that without taking the shim along.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { childProcess } from '../../common/lazy.ts';
import { PierError } from '../../common/errors.ts';
import { checkConfig } from './config.ts';
import { dial } from './client.ts';
import { FRAME, FrameReader } from './protocol.ts';
import type { ShimConfig, StartResult } from './types.ts';

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** the shim entry to run with process.execPath (default: shimScript()) */
  script?: string;
  /** how long to wait for the start report, ms (default 60 s) */
  timeoutMs?: number;
}

/**
 * $PIER_SHIM; else pier-shim.cjs beside this module (a bundled pierd lives in dist/) or in the
 * nearest ancestor's dist/; else the source entry src/cli/pier-shim.ts (Node runs it directly).
 */
export function shimScript(): string {
  if (process.env.PIER_SHIM) return process.env.PIER_SHIM;
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'pier-shim.cjs'))) return join(here, 'pier-shim.cjs');
  let source: string | undefined;
  for (let dir = here; ; dir = dirname(dir)) {
    const dist = join(dir, 'dist', 'pier-shim.cjs');
    if (existsSync(dist)) return dist;
    const src = join(dir, 'src', 'cli', 'pier-shim.ts');
    if (!source && existsSync(src)) source = src;
    if (dirname(dir) === dir) break;
  }
  if (source) return source;
  throw new PierError('pier-shim not found (run "node scripts/build.mjs" or set PIER_SHIM)');
}

function spawnDetached(args: string[], opts: SpawnOptions): ChildProcess {
  const script = opts.script ?? shimScript();
  return childProcess().spawn(process.execPath, [script, ...args], {
    detached: true, // setsid: no terminal, no signals aimed at pierd's process group
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: opts.env ?? process.env,
    cwd: '/', // pin no directory (a mount point the shim would keep busy)
  });
}

function exitOf(child: ChildProcess): Promise<string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? `status ${child.exitCode}`);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `status ${code}`)));
}

/** The first JSON line the shim writes on fd 3; rejects if the shim dies or stays silent. */
function firstReport(child: ChildProcess, timeoutMs: number): Promise<Record<string, unknown>> {
  const pipe = child.stdio[3] as Socket;
  return new Promise((resolve, reject) => {
    let buf = '';
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => finish(() => {
      child.kill('SIGKILL');
      reject(new PierError(`pier-shim did not report within ${timeoutMs} ms`));
    }), timeoutMs);
    child.once('error', (err) => finish(() => reject(new PierError(`cannot run pier-shim: ${err.message}`))));
    pipe.setEncoding('utf8');
    pipe.on('error', () => undefined);
    pipe.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      finish(() => {
        try { resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>); } catch { reject(new PierError(`pier-shim reported garbage: ${buf.slice(0, 200)}`)); }
      });
    });
    pipe.on('close', () => {
      if (settled) return;
      void exitOf(child).then((how) => finish(() => reject(new PierError(`pier-shim exited (${how}) before reporting`))));
    });
  });
}

/** A failed shim cleans up and exits: wait for that so "nothing remains" holds when we reject. */
async function failWith(child: ChildProcess, msg: string): Promise<never> {
  await Promise.race([exitOf(child), new Promise((r) => setTimeout(r, 10_000))]);
  throw new PierError(msg);
}

/**
 * Start a shim for cfg; resolves once the container runs (or is created, with deferStart).
 * On failure the runtime's one-line error rejects, after the shim deleted everything and exited.
 */
export async function spawnShim(cfg: ShimConfig, opts: SpawnOptions = {}): Promise<StartResult> {
  checkConfig(cfg);
  const child = spawnDetached(['--config', JSON.stringify(cfg)], opts);
  const report = await firstReport(child, opts.timeoutMs ?? 60_000);
  (child.stdio[3] as Socket).destroy();
  if (report.error !== undefined || report.ok !== true) return failWith(child, String(report.error ?? 'pier-shim failed'));
  child.unref();
  return { shimPid: Number(report.shimPid), initPid: Number(report.initPid) };
}

/**
 * A pre-started shim without a container. It exits by itself when the process that started it
 * dies (its fd 3 pipe reaches EOF) while still idle, so a pool never outlives its pierd.
 */
export class IdleShim {
  readonly pid: number;
  readonly socket: string;
  private readonly child: ChildProcess;
  private used = false;

  constructor(child: ChildProcess, socket: string) {
    this.child = child;
    this.pid = child.pid!;
    this.socket = socket;
  }

  /** Hand it a container; resolves like spawnShim. An IdleShim is used once. */
  async start(cfg: ShimConfig): Promise<StartResult> {
    if (this.used) throw new PierError('this idle shim was already used');
    checkConfig(cfg);
    this.used = true;
    const sock = await dial(this.socket);
    const reply = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const reader = new FrameReader();
      let settled = false;
      sock.on('data', (chunk: Buffer) => {
        try {
          for (const f of reader.push(chunk)) {
            if ('type' in f && f.type === FRAME.REPLY && !settled) {
              settled = true;
              resolve(JSON.parse(f.payload.toString('utf8')) as Record<string, unknown>);
            }
          }
        } catch (err) { if (!settled) { settled = true; reject(err); } }
      });
      sock.on('error', () => undefined);
      sock.on('close', () => { if (!settled) { settled = true; reject(new PierError('the idle shim hung up without answering start')); } });
      sock.write(JSON.stringify({ op: 'start', config: cfg }) + '\n');
    });
    sock.destroy();
    (this.child.stdio[3] as Socket | null)?.destroy();
    if (reply.error !== undefined || reply.ok !== true) return failWith(this.child, String(reply.error ?? 'pier-shim failed'));
    return { shimPid: Number(reply.shimPid), initPid: Number(reply.initPid) };
  }

  /** Stop an unused idle shim. */
  close(): void {
    if (!this.used && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    (this.child.stdio[3] as Socket | null)?.destroy();
  }
}

/** Pre-start a shim listening on `socket`; resolves once it accepts connections. */
export async function startIdleShim(socket: string, opts: SpawnOptions = {}): Promise<IdleShim> {
  const child = spawnDetached(['--idle', socket], opts);
  const report = await firstReport(child, opts.timeoutMs ?? 60_000);
  if (report.ok !== true) return failWith(child, String(report.error ?? 'pier-shim failed'));
  const pipe = child.stdio[3] as Socket;
  // keep the pipe open (its EOF tells the shim we died) without keeping our event loop alive
  pipe.removeAllListeners('data');
  pipe.unref();
  child.unref();
  return new IdleShim(child, socket);
}
