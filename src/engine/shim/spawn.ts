/**
 * Starting shims from pierd: spawnShim (one fresh process per container) and shim hosts
 * (startShimHost → ShimHost.start), long-lived processes that monitor many containers each.
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
 * pier-shim.cjs beside this module (a bundled pierd lives in dist/) or in the nearest ancestor's
 * dist/; else the source entry src/cli/pier-shim.ts (Node runs it directly). A caller that wants
 * another passes `script` (no environment is read this deep: the engine's EngineConfig is made at
 * its entry).
 */
export function shimScript(): string {
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
  throw new PierError('pier-shim not found (run "node scripts/build.mjs")');
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
 * A shim host (pier-shim --host): one long-lived process that monitors every container handed to
 * it, so a container start costs no Node start-up. Its pipe from us stays open while we live; when
 * it closes (pierd exited or was killed) the host takes no more containers and exits after its last.
 */
export class ShimHost {
  readonly pid: number;
  readonly socket: string;
  private readonly child: ChildProcess;

  constructor(child: ChildProcess, socket: string) {
    this.child = child;
    this.pid = child.pid!;
    this.socket = socket;
  }

  /** Does the host process still run? */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Hand it a container; resolves like spawnShim (shimPid is the host's pid). */
  async start(cfg: ShimConfig): Promise<StartResult> {
    checkConfig(cfg);
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
      sock.on('close', () => { if (!settled) { settled = true; reject(new PierError('the shim host hung up without answering start')); } });
      sock.write(JSON.stringify({ op: 'start', config: cfg }) + '\n');
    });
    sock.destroy();
    if (reply.error !== undefined || reply.ok !== true) throw new PierError(String(reply.error ?? 'pier-shim failed'));
    return { shimPid: Number(reply.shimPid), initPid: Number(reply.initPid) };
  }

  /** Let it go: it exits once its containers have (an idle host at once). */
  close(): void {
    (this.child.stdio[3] as Socket | null)?.destroy();
  }
}

/** Start a shim host listening on `socket`; resolves once it accepts connections. */
export async function startShimHost(socket: string, opts: SpawnOptions = {}): Promise<ShimHost> {
  const child = spawnDetached(['--host', socket], opts);
  const report = await firstReport(child, opts.timeoutMs ?? 60_000);
  if (report.ok !== true) return failWith(child, String(report.error ?? 'pier-shim failed'));
  const pipe = child.stdio[3] as Socket;
  // keep the pipe open (its EOF tells the host we died) without keeping our event loop alive
  pipe.removeAllListeners('data');
  pipe.unref();
  child.unref();
  return new ShimHost(child, socket);
}
