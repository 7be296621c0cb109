/**
 * `pier events` typed as a user: a `pier run --rm` seen as create/start/die/destroy with docker's
 * filters, --since replay, --until ending the stream, a live reader, network events, bad input.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { PIER, testEngine, until, type TestEngine } from '../helpers/engine.ts';

let e: TestEngine;
before(() => { e = testEngine(); });
after(async () => { await e.close(); });

const secs = (ms: number) => (ms / 1000).toFixed(3);

test('a run --rm is create, start, die, destroy; filters, --since and --until', async () => {
  const t0 = Date.now() - 1000;
  const r = e.pier(['run', '--rm', '--name', 'ev1', '--label', 'team=a', 'busybox', 'sh', '-c', 'exit 3']);
  assert.equal(r.status, 3, r.stderr);
  // --until in the past (now): the replay, then the end; poll until the removal is in
  const lines = await until(() => {
    const out = e.ok(['events', '--since', secs(t0), '--until', secs(Date.now()), '--filter', 'container=ev1']);
    return out.includes(' destroy ') && out.trim().split('\n');
  }, 'the destroy event');
  const id = e.ok(['events', '--since', secs(t0), '--until', secs(Date.now()), '--filter', 'container=ev1', '--format', '{{.Actor.ID}}']).trim().split('\n')[0];
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.deepEqual(lines.map((l) => l.split(' ').slice(1, 3).join(' ')), ['container create', 'container start', 'container die', 'container destroy']);
  for (const l of lines) assert.match(l, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z container \\w+ ${id} \\(.*image=busybox.*name=ev1.*team=a.*\\)$`), l);
  assert.match(lines[2], /exitCode=3/);
  // docker's filters: type and event together
  const dies = e.ok(['events', '--filter', 'type=container', '--filter', 'event=die', '--since', secs(t0), '--until', secs(Date.now()), '--format', '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}']);
  assert.deepEqual(dies.trim().split('\n'), ['die ev1 3']);
  assert.equal(e.ok(['events', '--filter', 'label=team=b', '--since', secs(t0), '--until', secs(Date.now())]), '');
  assert.equal(e.ok(['events', '--filter', 'image=busybox', '--filter', 'event=start', '--since', secs(t0), '--until', secs(Date.now())]).trim().split('\n').length, 1);
  // --format json: docker's fields and pier's sequence numbers, in order
  const json = e.ok(['events', '--since', secs(t0), '--until', secs(Date.now()), '--filter', 'container=ev1', '--format', 'json']).trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(json.map((j) => j.Action), ['create', 'start', 'die', 'destroy']);
  for (const j of json) {
    assert.equal(j.Type, 'container');
    assert.equal(j.scope, 'local');
    assert.equal(typeof j.timeNano, 'number');
    assert.equal(j.time, Math.floor(j.timeNano / 1e9));
  }
  assert.ok(json.every((j, i) => i === 0 || j.seq > json[i - 1].seq), 'seq grows');
});

test('a live reader sees events as they happen; --until in the future ends it', async () => {
  const stopAt = Date.now() + 5000;
  // --since now: only what comes (--until alone would replay the held events first, as docker does)
  const child = spawn(PIER, ['events', '--since', secs(Date.now()), '--filter', 'event=start', '--filter', 'event=die', '--until', secs(stopAt), '--format', '{{.Action}} {{.Actor.Attributes.name}}'], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.on('close', r));
  await new Promise((r) => setTimeout(r, 500));
  e.ok(['run', '--rm', '--name', 'ev2', 'busybox', 'true']);
  await until(() => out.includes('die ev2'), 'the live die event', 4500);
  assert.deepEqual(out.trim().split('\n'), ['start ev2', 'die ev2']);
  const code = await exited;
  assert.equal(code, 0);
  assert.ok(Date.now() >= stopAt - 100, 'it ran until --until');
});

test('network and volume events', async () => {
  await new Promise((r) => setTimeout(r, 20));
  const t0 = Date.now();
  e.ok(['network', 'create', 'evnet']);
  e.ok(['volume', 'create', 'evvol']);
  e.ok(['run', '--rm', '--network', 'evnet', 'busybox', 'true']);
  e.ok(['network', 'rm', 'evnet']);
  e.ok(['volume', 'rm', 'evvol']);
  const out = await until(() => {
    const o = e.ok(['events', '--since', secs(t0), '--until', secs(Date.now()), '--filter', 'type=network', '--filter', 'type=volume', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}}']);
    return o.includes('network destroy') && o;
  }, 'the network destroy');
  const lines = out.trim().split('\n');
  // a volume's Actor.ID is its name and it has no name attribute: Go's templates print <no value>
  assert.deepEqual(lines.map((l) => l.replace(/ [0-9a-f]{64}$/, ' ID')), ['network create evnet <no value>', 'volume create <no value> <no value>', 'network connect evnet ID', 'network disconnect evnet ID', 'network destroy evnet <no value>', 'volume destroy <no value> <no value>']);
  assert.equal(e.ok(['events', '--since', secs(t0), '--until', secs(Date.now()), '--filter', 'volume=evvol', '--format', '{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}']), 'create evvol local\ndestroy evvol local\n');
});

test('bad input: one line, non-zero', () => {
  for (const [args, re] of [
    [['--filter', 'colour=red'], /unknown filter "colour"/],
    [['--filter', 'event=explode'], /event=explode: not an event/],
    [['--filter', 'type=image'], /type=image: pier sends container, network, volume events/],
    [['--filter', 'novalue'], /--filter "novalue": expected KEY=VALUE/],
    [['--since', 'yesterday'], /since: expected an RFC 3339 time, unix seconds, or a duration like 10m/],
    [['--format', '{{range .Actor}}x{{end}}'], /beyond what pier supports/],
  ] as const) {
    const r = e.pier(['events', ...args, '--until', secs(Date.now())]);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  }
});
