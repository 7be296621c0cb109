/**
 * Node side of native/PROTOCOL.md: spawn pier-helper with the control socket as an extra stdio slot,
 * send the plan, and turn its `pid` / `ready` / `error` lines into promises.
 * We never touch process.stdout/stderr: the container's stdio is passed as inherited fds.
 */
import type { StdioOptions } from 'node:child_process';
import { childProcess } from '../../common/lazy.ts';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { PierError } from '../../common/errors.ts';
import { encodePlan, type PlanOp } from '../plan/ops.ts';

export type StdioSlot = number | 'ignore' | 'inherit';
export interface HelperOptions {
  /** fds 3..3+preserveFds-1 of this process are passed to the container as the same numbers */
  preserveFds?: number;
  stdio?: 'inherit' | [StdioSlot, StdioSlot, StdioSlot];
  /** explicit helper binary (else $PIER_HELPER or the search in findHelper) */
  helperPath?: string;
}

export interface HelperExit { code: number | null; signal: string | null }

export interface Helper {
  /** pid of the pier-helper process itself */
  readonly helperPid: number | undefined;
  /** host pid of the container process, once it is in its cgroups and has its id maps */
  readonly pid: Promise<number>;
  /** the child reached SYNC_READY; rejects with the helper's error line as a PierError */
  readonly ready: Promise<void>;
  /** the helper exited (wait mode: with the container's status, 128+n if killed by signal n) */
  readonly exit: Promise<HelperExit>;
  /** the last `error …` line, if any (also after `ready`, e.g. an exec that failed after start) */
  readonly lastError: () => string | undefined;
  sendState(json: string): void;
  go(): void;
  kill(signal?: NodeJS.Signals | number): void;
}

const BINARY = join('native', 'build', 'pier-helper');

/** $PIER_HELPER, else native/build/pier-helper in the nearest ancestor of this module's directory
 * (works from src/runtime/helper/ and from a bundled dist/*.mjs). */
export function findHelper(): string {
  const env = process.env.PIER_HELPER;
  if (env) return env;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, BINARY);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch { /* keep looking */ }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new PierError(`pier-helper not found (build it with "make -C native" or set PIER_HELPER)`);
}

interface Deferred<T> { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void; settled: boolean }
function deferred<T>(): Deferred<T> {
  let res!: (v: T) => void, rej!: (e: unknown) => void;
  const d: Deferred<T> = {
    promise: new Promise<T>((a, b) => { res = a; rej = b; }),
    resolve: (v) => { if (!d.settled) { d.settled = true; res(v); } },
    reject: (e) => { if (!d.settled) { d.settled = true; rej(e); } },
    settled: false,
  };
  d.promise.catch(() => undefined); // callers may stop listening after the first failure
  return d;
}

export function startHelper(plan: PlanOp[], opts: HelperOptions = {}): Helper {
  const path = opts.helperPath ?? findHelper();
  const preserve = opts.preserveFds ?? 0;
  const base: StdioSlot[] = opts.stdio === undefined || opts.stdio === 'inherit' ? ['inherit', 'inherit', 'inherit'] : [...opts.stdio];
  // Two sockets: the helper writes lines on ctl and reads the plan and state/go on input. Were they
  // one, a write to a helper that just died would fail with EPIPE and Node would destroy the socket
  // with the helper's last `error …` line still unread in it.
  const ctlIndex = 3 + preserve;
  const stdio: StdioOptions = [...base, ...Array.from({ length: preserve }, (_, i) => 3 + i), 'pipe', 'pipe'];

  const pid = deferred<number>(), ready = deferred<void>(), exit = deferred<HelperExit>();
  let lastError: string | undefined;
  const child = childProcess().spawn(path, [String(ctlIndex), String(ctlIndex + 1)], { stdio, env: {} });
  const ctl = child.stdio[ctlIndex] as Socket;
  const input = child.stdio[ctlIndex + 1] as Socket;
  input.on('error', () => undefined); // the helper is gone; what it said arrives on ctl

  const failAll = (msg: string): void => {
    const err = new PierError(msg);
    pid.reject(err);
    ready.reject(err);
  };
  child.on('error', (err) => {
    failAll(`cannot run pier-helper ${path}: ${err.message}`);
    exit.reject(new PierError(`cannot run pier-helper ${path}: ${err.message}`));
  });
  child.on('exit', (code, signal) => {
    exit.resolve({ code, signal });
    // without a pid the child never existed, so no one else can answer
    if (!pid.settled) setImmediate(() => failAll(lastError ?? `pier-helper exited (${signal ?? `status ${code}`}) before the container process existed`));
  });

  let buf = '';
  ctl.setEncoding('utf8');
  ctl.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('pid ')) pid.resolve(Number(line.slice(4)));
      else if (line === 'ready') {
        ready.resolve();
        // the init keeps its ends open while it waits on exec.fifo
        ctl.unref();
        input.unref();
      } else if (line.startsWith('error ')) {
        lastError = line.slice(6);
        failAll(lastError);
      }
    }
  });
  ctl.on('error', () => undefined); // EPIPE/ECONNRESET: reported through close below
  ctl.on('close', () => failAll(lastError ?? 'pier-helper closed its control socket before the container was ready'));
  input.write(encodePlan(plan));

  return {
    helperPid: child.pid,
    pid: pid.promise,
    ready: ready.promise,
    exit: exit.promise,
    lastError: () => lastError,
    sendState(json: string) {
      if (json.includes('\n')) throw new PierError('state JSON must be one line');
      input.write(`state ${json}\n`);
    },
    go() { input.write('go\n'); },
    kill(signal: NodeJS.Signals | number = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
