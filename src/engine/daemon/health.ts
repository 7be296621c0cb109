/**
 * Health checks, docker's behaviour: a container whose image (HEALTHCHECK) or create request
 * (--health-cmd …) has a test is probed while it runs. The first probe comes one interval after the
 * start (the start interval while in the start period); a probe that exits 0 makes it `healthy` and
 * clears the failing streak; a failure — a non-zero exit, a probe that could not run, one that
 * outlived the timeout (exit -1) — adds to the streak, except while the container is still
 * `starting` within its start period, and `retries` failures in a row make it `unhealthy`. The last
 * five results are kept (output cut at 4096 bytes). Each change of status is a `health_status: S`
 * event.
 *
 * The monitor is written against injected parts — how a probe runs (ProbeExec), the clock, where the
 * state is kept (setHealth), where events go — so its rules have unit tests on a fake clock. The
 * cluster's liveness/readiness probes are to reuse it. The wiring (attachHealth) follows the
 * engine's events: a start begins monitoring, die and destroy end it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../common/clock.ts';
import { messageOf } from '../../common/errors.ts';
import type { HealthConfig, HealthState, HealthLogEntry, HealthStatus } from '../api.ts';
import type { EngineEvent } from './events.ts';

/** docker's defaults (nanoseconds in configs; milliseconds here). */
export const DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, startPeriodMs: 0, startIntervalMs: 5_000, retries: 3 };
/** docker keeps this many results and this many bytes of each one's output. */
export const MAX_LOG = 5;
export const MAX_OUTPUT = 4096;

/** Run cmd in the container; resolve with its exit code and output (stdout+stderr). */
export type ProbeExec = (containerId: string, cmd: string[], timeoutMs: number) => Promise<{ exitCode: number; output: string }>;

export interface HealthMonitorOptions {
  exec: ProbeExec;
  clock: Clock;
  /** Keep the state (the daemon: into the container's record, under its lock). */
  setHealth: (id: string, health: HealthState) => void | Promise<void>;
  /** A change of status (the daemon: a health_status event). */
  onStatus?: (id: string, status: HealthStatus) => void;
}

/** The command a test runs: CMD args as they are, CMD-SHELL through /bin/sh -c; undefined for none. */
export function probeCommand(test: string[] | undefined): string[] | undefined {
  if (!test || test.length === 0 || test[0] === 'NONE') return undefined;
  if (test[0] === 'CMD') return test.length > 1 ? test.slice(1) : undefined;
  if (test[0] === 'CMD-SHELL') return test.length > 1 ? ['/bin/sh', '-c', test.slice(1).join(' ')] : undefined;
  return undefined;
}

/**
 * The check a container runs: its own fields over the image's (a zero or absent one is the image's),
 * as docker merges them; `NONE` on either side that wins turns it off.
 */
export function effectiveHealthcheck(container: HealthConfig | undefined, image: HealthConfig | undefined): HealthConfig | undefined {
  const test = container?.Test?.length ? container.Test : image?.Test;
  if (!test?.length || test[0] === 'NONE') return undefined;
  const pick = (k: 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval' | 'Retries') => container?.[k] || image?.[k] || undefined;
  const out: HealthConfig = { Test: test };
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) { const v = pick(k); if (v) out[k] = v; }
  return out;
}

const ms = (ns: number | undefined, dflt: number) => (ns && ns > 0 ? Math.max(1, Math.round(ns / 1e6)) : dflt);

function cut(s: string): string {
  const b = Buffer.from(s);
  return b.length <= MAX_OUTPUT ? s : b.subarray(0, MAX_OUTPUT).toString();
}

/** A Go duration as docker prints the timeout: 30s, 1.5s, 500ms. */
function seconds(msv: number): string {
  return msv < 1000 ? `${msv}ms` : `${msv / 1000}s`;
}

interface Watch {
  cmd: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  startIntervalMs: number;
  retries: number;
  startedAt: number;
  state: HealthState;
  timer?: { cancel(): void };
  stopped: boolean;
}

export class HealthMonitor {
  private watches = new Map<string, Watch>();
  private readonly o: HealthMonitorOptions;

  constructor(o: HealthMonitorOptions) {
    this.o = o;
  }

  /** Begin probing a container that just started (again: its old monitor ends first). */
  start(id: string, config: HealthConfig, startedAtMs = this.o.clock.now()): boolean {
    this.stop(id);
    const cmd = probeCommand(config.Test);
    if (!cmd) return false;
    const w: Watch = {
      cmd,
      intervalMs: ms(config.Interval, DEFAULTS.intervalMs),
      timeoutMs: ms(config.Timeout, DEFAULTS.timeoutMs),
      startPeriodMs: ms(config.StartPeriod, DEFAULTS.startPeriodMs),
      startIntervalMs: ms(config.StartInterval, DEFAULTS.startIntervalMs),
      retries: config.Retries && config.Retries > 0 ? config.Retries : DEFAULTS.retries,
      startedAt: startedAtMs,
      state: { Status: 'starting', FailingStreak: 0, Log: [] },
      stopped: false,
    };
    this.watches.set(id, w);
    void this.save(id, w);
    this.schedule(id, w);
    return true;
  }

  stop(id: string): void {
    const w = this.watches.get(id);
    if (!w) return;
    w.stopped = true;
    w.timer?.cancel();
    this.watches.delete(id);
  }

  state(id: string): HealthState | undefined {
    const w = this.watches.get(id);
    return w && structuredClone(w.state);
  }

  get monitored(): string[] {
    return [...this.watches.keys()];
  }

  close(): void {
    for (const id of [...this.watches.keys()]) this.stop(id);
  }

  private inStartPeriod(w: Watch, at: number): boolean {
    return at - w.startedAt < w.startPeriodMs;
  }

  private schedule(id: string, w: Watch): void {
    if (w.stopped) return;
    const now = this.o.clock.now();
    const delay = w.state.Status === 'starting' && this.inStartPeriod(w, now) ? Math.min(w.startIntervalMs, w.intervalMs) : w.intervalMs;
    w.timer = this.o.clock.setTimeout(() => { void this.probe(id, w); }, delay);
  }

  private async probe(id: string, w: Watch): Promise<void> {
    if (w.stopped) return;
    const start = this.o.clock.now();
    let result: { exitCode: number; output: string };
    let timer: { cancel(): void } | undefined;
    try {
      const timeout = new Promise<{ exitCode: number; output: string }>((resolve) => {
        timer = this.o.clock.setTimeout(() => resolve({ exitCode: -1, output: `Health check exceeded timeout (${seconds(w.timeoutMs)})` }), w.timeoutMs);
      });
      result = await Promise.race([this.o.exec(id, w.cmd, w.timeoutMs), timeout]);
    } catch (err) {
      result = { exitCode: -1, output: messageOf(err) };
    } finally {
      timer?.cancel();
    }
    if (w.stopped) return;
    const entry: HealthLogEntry = { Start: new Date(start).toISOString(), End: new Date(this.o.clock.now()).toISOString(), ExitCode: result.exitCode, Output: cut(result.output) };
    const before = w.state.Status;
    const s = w.state;
    if (result.exitCode === 0) {
      s.FailingStreak = 0;
      s.Status = 'healthy';
    } else if (!(s.Status === 'starting' && this.inStartPeriod(w, start))) {
      // a failure in the start period, before any success, is not counted
      s.FailingStreak++;
      if (s.FailingStreak >= w.retries) s.Status = 'unhealthy';
    }
    s.Log = [...s.Log, entry].slice(-MAX_LOG);
    await this.save(id, w);
    if (s.Status !== before) this.o.onStatus?.(id, s.Status);
    this.schedule(id, w);
  }

  private async save(id: string, w: Watch): Promise<void> {
    try { await this.o.setHealth(id, structuredClone(w.state)); } catch { /* the record is gone: the next event stops us */ }
  }
}

// ---- the daemon's wiring -------------------------------------------------------------------------

/** What attachHealth needs of the engine. */
export interface HealthSource {
  on(event: 'event', fn: (e: EngineEvent) => void): unknown;
  records: {
    find(ref: string): { id: string; config: { healthcheck?: HealthConfig }; state: { status: string; startedAt?: string } } | undefined;
    all(): { id: string; config: { healthcheck?: HealthConfig }; state: { status: string; startedAt?: string } }[];
    dirOf(id: string): string;
  };
}

/** The image's HEALTHCHECK, from the config create saved beside the record. */
function imageHealthcheck(dir: string): HealthConfig | undefined {
  try {
    return (JSON.parse(readFileSync(join(dir, 'image-config.json'), 'utf8')) as { config?: { Healthcheck?: HealthConfig } }).config?.Healthcheck;
  } catch { return undefined; }
}

/**
 * Monitor every running container with a check: those running now (a daemon that restarted takes
 * them over without a start event) and each one that starts from now on; stop at die and destroy.
 */
export function attachHealth(engine: HealthSource, monitor: HealthMonitor): void {
  const begin = (id: string) => {
    const rec = engine.records.find(id);
    if (!rec || rec.state.status !== 'running') return;
    const check = effectiveHealthcheck(rec.config.healthcheck, imageHealthcheck(engine.records.dirOf(id)));
    if (check) monitor.start(id, check, rec.state.startedAt ? Date.parse(rec.state.startedAt) : undefined);
  };
  engine.on('event', (e) => {
    if (e.type === 'start') begin(e.id);
    else if (e.type === 'die' || e.type === 'destroy') monitor.stop(e.id);
  });
  for (const r of engine.records.all()) if (r.state.status === 'running') begin(r.id);
}
