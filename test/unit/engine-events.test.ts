/** The event bus (daemon/events.ts): docker's shape, filters, since/until replay, the ring's bound, slow readers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { EventBus, eventLine, eventsOf, matches, parseFilters, type PierEvent } from '../../src/engine/daemon/events.ts';
import { compileTemplate, filtersJson, textLine } from '../../src/cli/engine/events.ts';

const T0 = 1_780_000_000_000; // ms
function fakeNs(): { bus: EventBus; at: (ms: number) => void } {
  let now = BigInt(T0) * 1_000_000n;
  return { bus: new EventBus({ nowNs: () => now, capacity: 8, maxQueued: 4 }), at: (ms) => { now = BigInt(ms) * 1_000_000n; } };
}

async function drain(sub: { next(): Promise<{ event: PierEvent } | { error: string } | { end: true }> }, n = 100): Promise<(PierEvent | string)[]> {
  const out: (PierEvent | string)[] = [];
  for (let i = 0; i < n; i++) {
    const x = await sub.next();
    if ('end' in x) break;
    if ('error' in x) { out.push(`error: ${x.error}`); break; }
    out.push(x.event);
  }
  return out;
}

test('container events have docker shape, a growing seq, the revision, and attributes from the record', () => {
  const { bus } = fakeNs();
  const recs = new Map([['a'.repeat(64), { name: 'web', image: 'busybox:latest', labels: { tier: 'front' } }]]);
  const lookup = (id: string) => recs.get(id);
  const c = bus.fromEngine({ type: 'create', id: 'a'.repeat(64), name: 'web', revision: 1 }, lookup);
  assert.equal(c.Type, 'container');
  assert.equal(c.Action, 'create');
  assert.equal(c.scope, 'local');
  assert.equal(c.seq, 1);
  assert.equal(c.revision, 1);
  assert.equal(c.time, Math.floor(T0 / 1000));
  assert.equal(c.timeNano, BigInt(T0) * 1_000_000n);
  assert.deepEqual(c.Actor, { ID: 'a'.repeat(64), Attributes: { tier: 'front', image: 'busybox:latest', name: 'web' } });
  assert.equal(c.status, 'create');
  assert.equal(c.from, 'busybox:latest');
  const d = bus.fromEngine({ type: 'die', id: 'a'.repeat(64), exitCode: 3 }, lookup);
  assert.equal(d.seq, 2);
  assert.equal(d.Actor.Attributes.exitCode, '3');
  assert.ok(d.timeNano > c.timeNano, 'time follows seq even when the clock stands still');
  // destroy comes after the record is gone: the attributes seen before are kept
  recs.clear();
  const x = bus.fromEngine({ type: 'destroy', id: 'a'.repeat(64), name: 'web' }, lookup);
  assert.equal(x.Actor.Attributes.image, 'busybox:latest');
  assert.equal(x.Actor.Attributes.tier, 'front');
  const h = bus.fromEngine({ type: 'health_status', id: 'b'.repeat(64), name: 'x', health: 'unhealthy' });
  assert.equal(h.Action, 'health_status: unhealthy');
  // timeNano goes on the wire as an exact integer
  const line = eventLine(c);
  assert.match(line, /"timeNano":1780000000000000000\}\n$/);
  assert.equal(JSON.parse(line).Type, 'container');
});

test('filters: docker JSON (both forms), unknown keys and values refused, matching rules', () => {
  assert.deepEqual(parseFilters('{"type":["container"],"event":{"die":true}}'), { type: ['container'], event: ['die'] });
  assert.deepEqual(parseFilters(''), {});
  for (const [bad, re] of [
    ['{"typo":["x"]}', /unknown filter "typo"/],
    ['{"type":["image"]}', /type=image: pier sends container, network, volume events/],
    ['{"event":["explode"]}', /event=explode: not an event/],
    ['{"type":"container"}', /type: expected a list of strings/],
    ['[1]', /expected a JSON object/],
    ['{', /not JSON/],
    ['{"scope":["mars"]}', /scope=mars/],
  ] as const) assert.throws(() => parseFilters(bad), re, bad);
  const { bus } = fakeNs();
  const ev = bus.publish('container', 'die', 'abc123'.padEnd(64, '0'), { name: 'web', image: 'busybox:latest', tier: 'front', exitCode: '0' });
  const net = bus.publish('network', 'create', 'f'.repeat(64), { name: 'app', type: 'bridge' });
  const hs = bus.publish('container', 'health_status: healthy', 'abc123'.padEnd(64, '0'), { name: 'web' });
  const m = (f: string, e: PierEvent) => matches(parseFilters(f), e);
  assert.ok(m('{"type":["container"],"event":["die","start"]}', ev));
  assert.ok(!m('{"type":["container"],"event":["start"]}', ev));
  assert.ok(!m('{"type":["container"]}', net));
  assert.ok(m('{"container":["web"]}', ev));
  assert.ok(m('{"container":["abc1"]}', ev), 'an id prefix');
  assert.ok(!m('{"container":["app"]}', net), 'container= is for container events');
  assert.ok(m('{"network":["app"]}', net));
  assert.ok(m('{"image":["busybox"]}', ev));
  assert.ok(m('{"image":["busybox:latest"]}', ev));
  assert.ok(!m('{"image":["alpine"]}', ev));
  assert.ok(m('{"label":["tier"]}', ev));
  assert.ok(m('{"label":["tier=front"]}', ev));
  assert.ok(!m('{"label":["tier=front","zone=b"]}', ev), 'every label must hold');
  assert.ok(m('{"event":["health_status"]}', hs), 'health_status takes every status');
  assert.ok(m('{"event":["health_status: healthy"]}', hs));
  assert.ok(!m('{"event":["health_status: unhealthy"]}', hs));
});

test('since replays what the ring holds, until ends the stream, live events follow', async () => {
  const { bus, at } = fakeNs();
  for (let i = 0; i < 12; i++) { at(T0 + i * 1000); bus.publish('container', i % 2 ? 'start' : 'create', `id${i}`, {}); }
  assert.equal(bus.held().length, 8, 'the ring is bounded');
  assert.deepEqual(bus.held().map((e) => e.seq), [5, 6, 7, 8, 9, 10, 11, 12]);
  // since in the past, until in the past: replay only, then the end
  const past = await drain(bus.subscribe({ sinceMs: T0 + 6000, untilMs: T0 + 9000 }, T0 + 20_000));
  assert.deepEqual(past.map((e) => (e as PierEvent).seq), [7, 8, 9, 10]);
  // until alone replays from the oldest held
  assert.equal((await drain(bus.subscribe({ untilMs: T0 + 5000 }, T0 + 20_000))).length, 2);
  // no bounds: only live events, filtered
  const live = bus.subscribe({ filter: parseFilters('{"event":["die"]}') }, T0 + 20_000);
  assert.equal(bus.subscribers, 1);
  at(T0 + 21_000);
  bus.publish('container', 'start', 'x', {});
  bus.publish('container', 'die', 'x', {});
  const first = await live.next();
  assert.ok('event' in first && first.event.Action === 'die');
  live.close();
  assert.deepEqual(await live.next(), { end: true });
  assert.equal(bus.subscribers, 0);
  // until in the future: events past it end the stream
  const until = bus.subscribe({ sinceMs: T0 + 21_000, untilMs: T0 + 30_000 }, T0 + 21_000);
  at(T0 + 31_000);
  bus.publish('container', 'create', 'late', {});
  const got = await drain(until);
  assert.deepEqual(got.map((e) => (e as PierEvent).Action), ['start', 'die']);
  assert.equal(bus.subscribers, 0);
});

test('a slow reader is dropped with an error, not buffered without bound', async () => {
  const { bus } = fakeNs();
  const slow = bus.subscribe({});
  const fast = bus.subscribe({});
  for (let i = 0; i < 4; i++) { bus.publish('container', 'create', `c${i}`, {}); assert.ok('event' in await fast.next()); }
  assert.equal(slow.queued, 4);
  bus.publish('container', 'create', 'c4', {}); // one more than maxQueued
  assert.equal(slow.queued, 0, 'its queue is let go');
  const r = await slow.next();
  assert.ok('error' in r && /fell 4 events behind and was dropped/.test(r.error));
  assert.equal(bus.subscribers, 1, 'the fast reader stays');
  bus.publish('container', 'create', 'c5', {});
  assert.ok('event' in await fast.next());
});

test('eventsOf: the engine emitter feeds one bus; start/die send network connect/disconnect', () => {
  const emitter = new EventEmitter();
  const rec = { name: 'web', image: 'busybox:latest', config: { labels: {} }, network: { networks: ['app'] } };
  const engine = Object.assign(emitter, {
    records: { find: (id: string) => (id === 'c1' ? rec : undefined) },
    networks: { inspect: (n: string) => ({ id: `net-${n}`, name: n }) },
  });
  const bus = eventsOf(engine);
  assert.equal(eventsOf(engine), bus, 'one per engine');
  emitter.emit('event', { type: 'start', id: 'c1', name: 'web' });
  emitter.emit('event', { type: 'die', id: 'c1', name: 'web', exitCode: 0 });
  assert.deepEqual(bus.held().map((e) => `${e.Type} ${e.Action} ${e.Actor.ID}`), ['container start c1', 'network connect net-app', 'container die c1', 'network disconnect net-app']);
  assert.equal(bus.held()[1].Actor.Attributes.container, 'c1');
});

test('pier events: --filter to JSON, docker text line, the template subset', () => {
  assert.equal(filtersJson(['type=container', 'event=die', 'event=start']), '{"type":["container"],"event":["die","start"]}');
  assert.throws(() => filtersJson(['nokey']), /--filter "nokey": expected KEY=VALUE/);
  const ev = { Type: 'container', Action: 'create', Actor: { ID: 'abc', Attributes: { name: 'x', image: 'busybox' } }, scope: 'local', time: 1796205600, timeNano: 1796205600000000123n, seq: 7 };
  assert.equal(textLine(ev), '2026-12-02T10:00:00.000000123Z container create abc (image=busybox, name=x)\n');
  assert.equal(compileTemplate('{{.Action}} {{.Actor.ID}}')(ev), 'create abc\n');
  assert.equal(compileTemplate('{{.Type}}/{{.Actor.Attributes.name}} {{index .Actor.Attributes "image"}} t={{.Time}} {{.Seq}} {{.ID}}')(ev), 'container/x busybox t=1796205600 7 <no value>\n');
  assert.equal(compileTemplate('{{json .Actor}}')(ev), '{"ID":"abc","Attributes":{"name":"x","image":"busybox"}}\n');
  assert.throws(() => compileTemplate('{{if .Action}}x{{end}}'), /\{\{if \.Action\}\} is beyond what pier supports/);
  assert.throws(() => compileTemplate('{{.Action | upper}}'), /beyond what pier supports/);
});
