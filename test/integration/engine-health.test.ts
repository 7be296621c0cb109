/**
 * Health checks typed as a user: `--health-cmd` turns a container healthy, unhealthy after its
 * retries and healthy again, shown in `pier ps`, `pier inspect` and as health_status events; a
 * HEALTHCHECK from a built image; `--no-healthcheck`; bad flags.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testEngine, until, type TestEngine } from '../helpers/engine.ts';

let e: TestEngine;
before(() => { e = testEngine(); });
after(async () => { await e.close(); });

const health = (ref: string) => e.inspect(ref).state.health as { Status: string; FailingStreak: number; Log: { ExitCode: number; Output: string }[] } | undefined;
const psStatus = (name: string) => e.ok(['ps', '--format', 'json']) && (JSON.parse(e.ok(['ps', '--format', 'json'])) as { name: string }[]).some((c) => c.name === name) && e.ok(['ps']).split('\n').find((l) => l.endsWith(` ${name}`));

test('starting → healthy → unhealthy → healthy, in ps, inspect and events', async () => {
  const t0 = Date.now();
  e.ok(['run', '-d', '--name', 'hc1', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '1s', '--health-retries', '2', 'busybox', 'sleep', '300']);
  assert.equal(health('hc1')?.Status, 'starting');
  assert.match(psStatus('hc1') as string, /Up .* \(health: starting\)/);
  e.ok(['exec', 'hc1', 'touch', '/tmp/ok']);
  await until(() => health('hc1')?.Status === 'healthy', 'healthy');
  assert.match(psStatus('hc1') as string, /Up .* \(healthy\) /);
  e.ok(['exec', 'hc1', 'rm', '/tmp/ok']);
  await until(() => health('hc1')?.Status === 'unhealthy', 'unhealthy');
  const h = health('hc1')!;
  assert.ok(h.FailingStreak >= 2, JSON.stringify(h));
  assert.ok(h.Log.length >= 1 && h.Log.length <= 5);
  assert.equal(h.Log[h.Log.length - 1].ExitCode, 1);
  assert.match(psStatus('hc1') as string, /Up .* \(unhealthy\) /);
  e.ok(['exec', 'hc1', 'touch', '/tmp/ok']);
  await until(() => health('hc1')?.Status === 'healthy', 'healthy again');
  const evs = e.ok(['events', '--since', (t0 / 1000).toFixed(3), '--until', (Date.now() / 1000).toFixed(3), '--filter', 'event=health_status', '--format', '{{.Action}} {{.Actor.Attributes.name}}']);
  assert.deepEqual(evs.trim().split('\n'), ['health_status: healthy hc1', 'health_status: unhealthy hc1', 'health_status: healthy hc1']);
  // stopped: probes end with the run
  e.ok(['stop', '-t', '1', 'hc1']);
  const n = health('hc1')!.Log.length;
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(health('hc1')!.Log.length, n);
});

test('HEALTHCHECK from a built image; --no-healthcheck turns it off; timeouts fail', async () => {
  const ctx = mkdtempSync(join(tmpdir(), 'pier-hc-'));
  writeFileSync(join(ctx, 'Containerfile'), 'FROM busybox\nHEALTHCHECK --interval=1s --timeout=500ms --retries=1 CMD ["sh", "-c", "test -f /ok || sleep 5"]\n');
  e.ok(['build', '-t', 'hcimg:1', ctx], { timeout: 120_000 });
  const img = JSON.parse(e.ok(['image', 'inspect', 'hcimg:1']));
  const cfg = (Array.isArray(img) ? img[0] : img);
  assert.match(JSON.stringify(cfg), /"Healthcheck":\{"Test":\["CMD","sh","-c","test -f \/ok \|\| sleep 5"\],"Interval":1000000000,"Timeout":500000000,"Retries":1\}/);
  e.ok(['run', '-d', '--name', 'hc2', 'hcimg:1', 'sleep', '300']);
  await until(() => health('hc2')?.Status === 'unhealthy', 'unhealthy by timeout');
  assert.equal(health('hc2')!.Log[0].ExitCode, -1);
  assert.match(health('hc2')!.Log[0].Output, /^Health check exceeded timeout \(500ms\)$/);
  e.ok(['exec', 'hc2', 'touch', '/ok']);
  await until(() => health('hc2')?.Status === 'healthy', 'healthy');
  e.ok(['run', '-d', '--name', 'hc3', '--no-healthcheck', 'hcimg:1', 'sleep', '300']);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(health('hc3'), undefined);
  assert.doesNotMatch(psStatus('hc3') as string, /health/);
  e.ok(['rm', '-f', 'hc2', 'hc3']);
});

test('bad health flags: one line, nothing made', () => {
  for (const [args, re] of [
    [['--health-interval', '5'], /invalid --health-interval "5": a duration like 30s/],
    [['--health-retries', '-1'], /invalid --health-retries "-1"/],
    [['--no-healthcheck', '--health-cmd', 'true'], /--no-healthcheck conflicts with --health-cmd/],
    [['--health-timeout', '10us'], /at least 1ms/],
  ] as const) {
    const r = e.pier(['create', '--name', 'hcbad', ...args, 'busybox', 'true']);
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  }
  assert.notEqual(e.pier(['inspect', '--type', 'container', 'hcbad']).status, 0);
});
