/** The health monitor's rules (daemon/health.ts) on a fake clock and a fake probe: docker's behaviour. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../helpers/fake-clock.ts';
import { HealthMonitor, effectiveHealthcheck, probeCommand, type ProbeExec } from '../../src/engine/daemon/health.ts';
import type { HealthState } from '../../src/engine/api.ts';

const S = 1e9; // ns per second

/** A probe whose result the test sets; `hang` never answers (the timeout must end it). */
function fakeProbe(): { exec: ProbeExec; set(code: number | 'hang'): void; calls: string[][] } {
  let next: number | 'hang' = 0;
  const calls: string[][] = [];
  return {
    calls,
    set: (c) => { next = c; },
    exec: async (_id, cmd) => {
      calls.push(cmd);
      if (next === 'hang') return new Promise(() => {});
      return { exitCode: next, output: next === 0 ? 'ok\n' : `fail ${next}\n` };
    },
  };
}

function setup(probe: ReturnType<typeof fakeProbe>) {
  const clock = new FakeClock();
  const saved: HealthState[] = [];
  const events: string[] = [];
  const m = new HealthMonitor({ exec: probe.exec, clock, setHealth: (_id, h) => { saved.push(h); }, onStatus: (_id, s) => events.push(s) });
  return { clock, saved, events, m, last: () => saved[saved.length - 1] };
}

test('starting → healthy → unhealthy after N failures → healthy again; events on changes only', async () => {
  const probe = fakeProbe();
  const { clock, events, m, last } = setup(probe);
  m.start('c1', { Test: ['CMD-SHELL', 'test -f /tmp/ok'], Interval: 1 * S, Retries: 2 });
  assert.equal(last().Status, 'starting');
  await clock.advance(999);
  assert.equal(probe.calls.length, 0, 'the first probe is one interval after the start');
  await clock.advance(1);
  assert.deepEqual(probe.calls[0], ['/bin/sh', '-c', 'test -f /tmp/ok']);
  assert.equal(last().Status, 'healthy');
  await clock.advance(1000);
  assert.equal(last().Status, 'healthy');
  probe.set(1);
  await clock.advance(1000);
  assert.equal(last().Status, 'healthy', 'one failure of two retries');
  assert.equal(last().FailingStreak, 1);
  await clock.advance(1000);
  assert.equal(last().Status, 'unhealthy');
  assert.equal(last().FailingStreak, 2);
  await clock.advance(1000);
  assert.equal(last().FailingStreak, 3);
  probe.set(0);
  await clock.advance(1000);
  assert.equal(last().Status, 'healthy');
  assert.equal(last().FailingStreak, 0);
  assert.deepEqual(events, ['healthy', 'unhealthy', 'healthy']);
  // the log keeps the last five, docker's fields
  assert.equal(last().Log.length, 5);
  assert.deepEqual(last().Log.map((e) => e.ExitCode), [0, 1, 1, 1, 0]);
  const e = last().Log[4];
  assert.equal(e.Output, 'ok\n');
  assert.ok(Date.parse(e.Start) <= Date.parse(e.End));
  m.stop('c1');
  const n = probe.calls.length;
  await clock.advance(10_000);
  assert.equal(probe.calls.length, n, 'stopped: no more probes');
  assert.deepEqual(clock.timers(), []);
});

test('failures within the start period do not count while starting; the start interval applies there', async () => {
  const probe = fakeProbe();
  const { clock, m, last } = setup(probe);
  probe.set(1);
  m.start('c1', { Test: ['CMD', 'false'], Interval: 10 * S, StartPeriod: 5 * S, StartInterval: 1 * S, Retries: 1 });
  for (let i = 0; i < 4; i++) await clock.advance(1000);
  assert.equal(probe.calls.length, 4, 'probed every start interval');
  assert.deepEqual(probe.calls[0], ['false']);
  assert.equal(last().Status, 'starting');
  assert.equal(last().FailingStreak, 0);
  await clock.advance(1000); // at 5s: out of the start period, this failure counts
  assert.equal(last().Status, 'unhealthy');
  // out of the start period the interval is the ordinary one
  await clock.advance(9_999);
  assert.equal(probe.calls.length, 5);
  await clock.advance(1);
  assert.equal(probe.calls.length, 6);
});

test('a success in the start period ends starting; later failures count even inside it', async () => {
  const probe = fakeProbe();
  const { clock, m, last } = setup(probe);
  m.start('c1', { Test: ['CMD', 'true'], Interval: 1 * S, StartPeriod: 60 * S, StartInterval: 1 * S, Retries: 1 });
  await clock.advance(1000);
  assert.equal(last().Status, 'healthy');
  probe.set(2);
  await clock.advance(1000);
  assert.equal(last().Status, 'unhealthy');
});

test('a probe that outlives the timeout is a failure with exit -1; a probe that cannot run too', async () => {
  const probe = fakeProbe();
  const { clock, m, last } = setup(probe);
  probe.set('hang');
  m.start('c1', { Test: ['CMD-SHELL', 'sleep 100'], Interval: 1 * S, Timeout: 500e6, Retries: 1 });
  await clock.advance(1000);
  assert.equal(last().Status, 'starting', 'still waiting for the probe');
  await clock.advance(500);
  assert.equal(last().Status, 'unhealthy');
  assert.equal(last().Log[0].ExitCode, -1);
  assert.equal(last().Log[0].Output, 'Health check exceeded timeout (500ms)');
  const broken = setup({ calls: [], set: () => {}, exec: async () => { throw new Error('cannot exec in a paused container'); } });
  broken.m.start('c2', { Test: ['CMD', 'true'], Interval: 1 * S, Retries: 1 });
  await broken.clock.advance(1000);
  assert.equal(broken.last().Status, 'unhealthy');
  assert.deepEqual([broken.last().Log[0].ExitCode, broken.last().Log[0].Output], [-1, 'cannot exec in a paused container']);
});

test('output is cut at 4096 bytes; docker defaults (30s interval, 3 retries)', async () => {
  const clock = new FakeClock();
  let h: HealthState | undefined;
  let n = 0;
  const m = new HealthMonitor({ clock, exec: async () => { n++; return { exitCode: 1, output: 'x'.repeat(10_000) }; }, setHealth: (_id, s) => { h = s; } });
  m.start('c', { Test: ['CMD', 'x'] });
  await clock.advance(29_999);
  assert.equal(n, 0);
  await clock.advance(1);
  assert.equal(h!.Log[0].Output.length, 4096);
  await clock.advance(60_000);
  assert.equal(h!.Status, 'unhealthy');
  assert.equal(h!.FailingStreak, 3);
  m.close();
});

test('tests: CMD, CMD-SHELL, NONE; container fields over the image', () => {
  assert.deepEqual(probeCommand(['CMD', 'a', 'b']), ['a', 'b']);
  assert.deepEqual(probeCommand(['CMD-SHELL', 'a && b']), ['/bin/sh', '-c', 'a && b']);
  assert.equal(probeCommand(['NONE']), undefined);
  assert.equal(probeCommand([]), undefined);
  const image = { Test: ['CMD', 'img'], Interval: 5 * S, Retries: 4 };
  assert.deepEqual(effectiveHealthcheck(undefined, image), image);
  assert.deepEqual(effectiveHealthcheck({ Interval: 1 * S }, image), { Test: ['CMD', 'img'], Interval: 1 * S, Retries: 4 });
  assert.deepEqual(effectiveHealthcheck({ Test: ['CMD-SHELL', 'mine'] }, image), { Test: ['CMD-SHELL', 'mine'], Interval: 5 * S, Retries: 4 });
  assert.equal(effectiveHealthcheck({ Test: ['NONE'] }, image), undefined, '--no-healthcheck');
  assert.equal(effectiveHealthcheck(undefined, { Test: ['NONE'] }), undefined);
  assert.equal(effectiveHealthcheck(undefined, undefined), undefined);
});
