import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Controller, Informer, byOwnerUid, NAMESPACE_INDEX,
  type Frozen, type KObject, type ListWatch, type OwnerReference, type WatchEvent,
} from '../../src/cluster/controller/index.ts';
import { FakeListWatch } from '../helpers/cluster-fakes.ts';
import { FakeClock, settle } from '../helpers/fake-clock.ts';

interface Thing extends KObject {
  spec?: { n?: number };
}

function thing(ns: string, name: string, extra: { labels?: Record<string, string>; owners?: OwnerReference[]; n?: number } = {}): Thing {
  return {
    apiVersion: 'v1', kind: 'Thing',
    metadata: { namespace: ns || undefined, name, labels: extra.labels, ownerReferences: extra.owners },
    spec: { n: extra.n ?? 0 },
  };
}

/** Every handler call as a line: "add ns/a@1", "update ns/a@1>4", "delete ns/b@2 unknown". */
function recorder() {
  const log: string[] = [];
  const at = (o: Frozen<KObject>) => `${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}@${o.metadata.resourceVersion}`;
  return {
    log,
    handler: {
      onAdd: (o: Frozen<Thing>) => { log.push(`add ${at(o)}`); },
      onUpdate: (old: Frozen<Thing>, o: Frozen<Thing>) => { log.push(old === o ? `resync ${at(o)}` : `update ${at(old)}>${o.metadata.resourceVersion}`); },
      onDelete: (o: Frozen<Thing>, unknown: boolean) => { log.push(`delete ${at(o)}${unknown ? ' unknown' : ''}`); },
    },
  };
}

function setup(opts: { resyncMs?: number; indexers?: Record<string, (o: Frozen<Thing>) => readonly string[]> } = {}) {
  const clock = new FakeClock();
  const fake = new FakeListWatch<Thing>();
  const errors: unknown[] = [];
  const informer = new Informer<Thing>({ listWatch: fake, clock, resyncMs: opts.resyncMs, indexers: opts.indexers, onError: (e) => errors.push(e) });
  return { clock, fake, informer, errors };
}

test('informer: lists, then watches from the list\'s version; events reach the cache and the handlers', async () => {
  const { fake, informer } = setup();
  fake.create(thing('ns', 'a'));
  fake.create(thing('ns', 'b'));
  const r = recorder();
  informer.addEventHandler(r.handler);
  informer.start();
  assert.equal(informer.hasSynced(), false, 'not synced before the list came back');
  assert.equal(await informer.waitForSync(), true);
  assert.deepEqual(fake.lists, ['2']);
  await settle();
  assert.deepEqual(fake.watches, ['2'], 'the watch starts where the list ended');
  assert.deepEqual(r.log.sort(), ['add ns/a@1', 'add ns/b@2']);
  r.log.length = 0;

  fake.create(thing('ns', 'c'));
  fake.modify('ns/a', (o) => { o.spec = { n: 1 }; });
  fake.remove('ns/b');
  fake.bookmark();
  await settle();
  assert.deepEqual(r.log, ['add ns/c@3', 'update ns/a@1>4', 'delete ns/b@5']);
  assert.deepEqual(informer.keys().sort(), ['ns/a', 'ns/c']);
  assert.equal(informer.get('ns/a')?.spec?.n, 1);
  assert.equal(informer.get('ns/a')?.metadata.generation, 2);
  assert.equal(informer.resourceVersion, '5');
  assert.deepEqual(fake.lists, ['2'], 'no relist while the watch is healthy');
  await informer.stop();
  assert.equal(fake.openWatches, 0, 'stop ends the watch');
  fake.create(thing('ns', 'late'));
  await settle();
  assert.equal(r.log.length, 3, 'nothing after stop');
});

test('informer: the cache is read-only — frozen objects, no alias to what the source handed over', async () => {
  const shared = thing('ns', 'a', { labels: { app: 'web' } });
  shared.metadata.resourceVersion = '7';
  const idle: ListWatch<Thing> = {
    list: async () => ({ items: [shared], resourceVersion: '7' }),
    watch: ({ signal }) => ({
      async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent<Thing>> {
        await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      },
    }),
  };
  const informer = new Informer<Thing>({ listWatch: idle, clock: new FakeClock() });
  let handed: Frozen<Thing> | undefined;
  informer.addEventHandler({ onAdd: (o) => { handed = o; } });
  informer.start();
  await informer.waitForSync();
  const cached = informer.get('ns/a')!;
  assert.equal(handed, cached, 'handlers and listers see the same frozen object (no copy per read)');
  assert.ok(Object.isFrozen(cached) && Object.isFrozen(cached.metadata) && Object.isFrozen(cached.metadata.labels));
  assert.throws(() => { (cached.metadata.labels as Record<string, string>).app = 'evil'; }, TypeError);
  assert.throws(() => { (cached as Thing).spec = { n: 9 }; }, TypeError);
  shared.metadata.labels!.app = 'changed at the source';
  assert.equal(informer.get('ns/a')!.metadata.labels!.app, 'web', 'the cache holds its own copy');
  const mine = structuredClone(cached) as Thing;
  mine.metadata.labels!.app = 'copy';
  assert.equal(informer.get('ns/a')!.metadata.labels!.app, 'web');
  await informer.stop();
});

test('informer: after a gap and a 410 it relists and emits exactly the differences', async () => {
  const { clock, fake, informer, errors } = setup();
  for (const n of ['a', 'b', 'c', 'same']) fake.create(thing('ns', n));
  const r = recorder();
  informer.addEventHandler(r.handler);
  informer.start();
  await informer.waitForSync();
  await settle();
  fake.modify('ns/c', (o) => { o.spec = { n: 1 }; }); // rv 5, seen by the watch
  await settle();
  const uidC = informer.get('ns/c')!.metadata.uid;
  r.log.length = 0;

  // The connection is cut; while nobody watches, things change and the history is compacted.
  fake.dropWatches();
  fake.remove('ns/b');                                   // 6: never seen as an event
  fake.modify('ns/a', (o) => { o.spec = { n: 2 }; });    // 7
  fake.create(thing('ns', 'd'));                         // 8
  fake.remove('ns/c');                                   // 9
  fake.create(thing('ns', 'c'));                         // 10: same name, new uid
  fake.compact();
  await clock.advance(1000);

  assert.deepEqual(fake.watches, ['4', '5', '10'], 'resumed from 5, was Gone, watched again from the new list');
  assert.deepEqual(fake.lists, ['4', '10']);
  assert.deepEqual(r.log, [
    'update ns/a@1>7',
    'add ns/d@8',
    'delete ns/c@5 unknown', 'add ns/c@10',
    'delete ns/b@2 unknown',
  ], 'in list order, then what vanished');
  assert.notEqual(informer.get('ns/c')!.metadata.uid, uidC);
  assert.deepEqual(informer.keys().sort(), ['ns/a', 'ns/c', 'ns/d', 'ns/same']);
  assert.deepEqual(errors, [], 'a 410 is protocol, not an error');

  // An open watch that is expired (ERROR 410) relists too, and an unchanged world emits nothing.
  // Its second quiet failure in a row: the delay doubled.
  r.log.length = 0;
  fake.expireWatches();
  await settle();
  assert.deepEqual(clock.timers(), [1600]);
  await clock.advance(1600);
  assert.deepEqual(fake.lists, ['4', '10', '10']);
  assert.deepEqual(r.log, []);
  fake.create(thing('ns', 'e'));
  await settle();
  assert.deepEqual(r.log, ['add ns/e@11'], 'watching again after the relist');
  await informer.stop();
});

test('informer: a watch that ends resumes from the last version; one that breaks relists after a backoff', async () => {
  const { clock, fake, informer, errors } = setup();
  fake.create(thing('ns', 'a'));
  const r = recorder();
  informer.addEventHandler(r.handler);
  informer.start();
  await informer.waitForSync();
  await settle();
  fake.create(thing('ns', 'b')); // 2
  await settle();
  fake.dropWatches();
  fake.create(thing('ns', 'gap')); // 3: written while no watch was open
  await settle();
  assert.deepEqual(fake.watches, ['1', '2'], 'a watch that made progress is resumed at once from where it was');
  assert.deepEqual(fake.lists, ['1'], 'without a relist');
  assert.ok(r.log.includes('add ns/gap@3'), 'the server replayed the gap');

  // A quiet watch that breaks: reported, then a relist after the first backoff delay (800 ms).
  fake.dropWatches(new Error('connection reset'));
  await settle();
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /connection reset/);
  assert.deepEqual(clock.timers(), [800]);
  await clock.advance(799);
  assert.deepEqual(fake.lists, ['1']);
  await clock.advance(1);
  assert.deepEqual(fake.lists, ['1', '3']);
  await informer.stop();
});

test('informer: an ERROR event other than 410 is reported and relisted; a thrown 410 is relisted quietly', async () => {
  const clock = new FakeClock();
  let lists = 0;
  const script: (() => AsyncIterable<WatchEvent<Thing>>)[] = [
    async function* () { yield { type: 'ERROR', object: { kind: 'Status', code: 500, reason: 'InternalError', message: 'etcd unhappy' } }; },
    async function* () { throw Object.assign(new Error('HTTP 410'), { statusCode: 410 }); },
  ];
  const lw: ListWatch<Thing> = {
    list: async () => ({ items: [thing('ns', `gen${++lists}`)], resourceVersion: String(lists) }),
    watch: ({ signal }) => script.shift()?.() ?? {
      async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent<Thing>> {
        await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      },
    },
  };
  const errors: unknown[] = [];
  const informer = new Informer<Thing>({ listWatch: lw, clock, onError: (e) => errors.push(e) });
  informer.start();
  await informer.waitForSync();
  await clock.advance(800);
  assert.equal(lists, 2);
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /500 InternalError: etcd unhappy/);
  await clock.advance(1600);
  assert.equal(lists, 3, 'the thrown 410 relisted too');
  assert.equal(errors.length, 1, 'without an error report');
  assert.deepEqual(informer.keys(), ['ns/gen3'], 'each relist replaced the cache');
  await informer.stop();
});

test('informer: failing lists are retried on the clock with doubling delays; sync waits for the first good one', async () => {
  const { clock, fake, informer, errors } = setup();
  fake.create(thing('', 'cluster-scoped'));
  fake.failLists(new Error('refused'), new Error('refused'));
  informer.start();
  let synced: boolean | undefined;
  void informer.waitForSync().then((ok) => { synced = ok; });
  await settle();
  assert.deepEqual(clock.timers(), [800]);
  await clock.advance(800);
  assert.deepEqual(clock.timers(), [1600]);
  assert.equal(synced, undefined);
  await clock.advance(1600);
  assert.equal(synced, true);
  assert.equal(errors.length, 2);
  assert.ok(informer.get('cluster-scoped'), 'a cluster-scoped key is the bare name');
  await informer.stop();

  const never = setup().informer;
  never.start();
  const wait = never.waitForSync();
  await never.stop();
  assert.equal(await wait, false, 'stopped before it synced');
});

test('informer: resync re-delivers the cache on the fake clock, and stops with the informer', async () => {
  const { clock, fake, informer } = setup({ resyncMs: 1000 });
  fake.create(thing('ns', 'a'));
  fake.create(thing('ns', 'b'));
  const r = recorder();
  informer.addEventHandler(r.handler);
  informer.start();
  await informer.waitForSync();
  await settle();
  r.log.length = 0;
  await clock.advance(999);
  assert.deepEqual(r.log, []);
  await clock.advance(1);
  assert.deepEqual(r.log.sort(), ['resync ns/a@1', 'resync ns/b@2']);
  await clock.advance(1000);
  assert.equal(r.log.length, 4);
  assert.deepEqual(fake.lists, ['2'], 'a resync reads the cache, not the server');
  await informer.stop();
  await clock.advance(10_000);
  assert.equal(r.log.length, 4);
});

test('informer: late handlers see the cache as adds; a throwing handler is reported and others still run', async () => {
  const { fake, informer, errors } = setup();
  fake.create(thing('ns', 'a'));
  informer.addEventHandler({ onAdd: () => { throw new Error('bad handler'); } });
  informer.start();
  await informer.waitForSync();
  const late = recorder();
  const remove = informer.addEventHandler(late.handler);
  assert.deepEqual(late.log, ['add ns/a@1']);
  await settle();
  fake.create(thing('ns', 'b'));
  await settle();
  assert.deepEqual(late.log, ['add ns/a@1', 'add ns/b@2']);
  assert.equal(errors.length, 2);
  remove();
  fake.create(thing('ns', 'c'));
  await settle();
  assert.equal(late.log.length, 2, 'a removed handler hears nothing');
  await informer.stop();
});

test('informer: indexes by namespace and by owner uid follow updates and deletes', async () => {
  const { fake, informer } = setup({ indexers: { owner: byOwnerUid } });
  const own = (uid: string): OwnerReference[] => [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `rs-${uid}`, uid, controller: true }];
  fake.create(thing('a', 'p1', { owners: own('u1') }));
  fake.create(thing('a', 'p2', { owners: own('u1') }));
  fake.create(thing('b', 'p3', { owners: own('u2') }));
  fake.create(thing('', 'node1'));
  informer.start();
  await informer.waitForSync();
  await settle();
  const names = (xs: Frozen<Thing>[]) => xs.map((x) => x.metadata.name).sort();
  assert.deepEqual(names(informer.byIndex(NAMESPACE_INDEX, 'a')), ['p1', 'p2']);
  assert.deepEqual(names(informer.byIndex(NAMESPACE_INDEX, 'b')), ['p3']);
  assert.deepEqual(names(informer.byIndex(NAMESPACE_INDEX, '')), ['node1']);
  assert.deepEqual(names(informer.byIndex('owner', 'u1')), ['p1', 'p2']);

  fake.modify('a/p2', (o) => { o.metadata.ownerReferences = own('u2'); });
  fake.remove('a/p1');
  await settle();
  assert.deepEqual(names(informer.byIndex('owner', 'u1')), []);
  assert.deepEqual(names(informer.byIndex('owner', 'u2')), ['p2', 'p3']);
  assert.deepEqual(names(informer.byIndex(NAMESPACE_INDEX, 'a')), ['p2']);
  assert.throws(() => informer.byIndex('nope', 'x'), /no index named "nope"/);
  await informer.stop();
});

// --- the controller harness

/** A reconcile whose calls can be held open, one gate per call. */
function gatedReconcile() {
  const calls: string[] = [];
  const gates: (() => void)[] = [];
  let hold = false;
  return {
    calls, gates,
    hold(on: boolean) { hold = on; },
    reconcile: async (key: string) => {
      calls.push(key);
      if (hold) await new Promise<void>((r) => gates.push(r));
    },
  };
}

test('controller: many events for a key before it runs make one more reconcile, not fifty', async () => {
  const { clock, fake, informer } = setup();
  fake.create(thing('ns', 'x'));
  const g = gatedReconcile();
  g.hold(true);
  const c = new Controller<Thing>({ name: 't', primary: informer, kind: 'Thing', apiVersion: 'v1', reconcile: g.reconcile, clock });
  assert.equal(await c.start(), true);
  await settle();
  assert.deepEqual(g.calls, ['ns/x'], 'the synced cache is enqueued once');
  for (let i = 1; i <= 50; i++) fake.modify('ns/x', (o) => { o.spec = { n: i }; });
  await settle();
  assert.equal(g.calls.length, 1, 'not again while it runs');
  g.hold(false);
  g.gates.shift()!();
  await settle();
  await c.idle();
  assert.deepEqual(g.calls, ['ns/x', 'ns/x'], 'fifty changes, one reconcile afterwards');
  await c.shutdown();
  await informer.stop();
});

test('controller: a key is never reconciled twice at once, different keys run in parallel, and the last look is current', async () => {
  const { clock, fake, informer } = setup();
  const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
  for (const k of keys) fake.create(thing('ns', k));
  const inFlight = new Map<string, number>();
  let maxPerKey = 0, running = 0, maxRunning = 0;
  const lastSeen = new Map<string, string | undefined>();
  const c = new Controller<Thing>({
    name: 't', primary: informer, kind: 'Thing', apiVersion: 'v1', workers: 3, clock,
    reconcile: async (key) => {
      const n = (inFlight.get(key) ?? 0) + 1;
      inFlight.set(key, n);
      maxPerKey = Math.max(maxPerKey, n);
      maxRunning = Math.max(maxRunning, ++running);
      lastSeen.set(key, informer.get(key)?.metadata.resourceVersion);
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      inFlight.set(key, n - 1);
      running--;
    },
  });
  await c.start();
  // k0 changes every turn, so it is often changed while it runs and while workers are free;
  // the others in a rotating subset, so all three workers are busy at times.
  for (let round = 0; round < 30; round++) {
    for (const [i, k] of keys.entries()) {
      if (i === 0 || (round + i) % 4 === 0) fake.modify(`ns/${k}`, (o) => { o.spec = { n: round }; });
    }
    await new Promise((r) => setImmediate(r));
  }
  await settle();
  await c.idle();
  assert.equal(maxPerKey, 1, 'one key, one reconcile at a time');
  assert.ok(maxRunning > 1 && maxRunning <= 3, `workers ran in parallel, up to 3 (saw ${maxRunning})`);
  for (const k of keys) assert.equal(lastSeen.get(`ns/${k}`), fake.get(`ns/${k}`)!.metadata.resourceVersion, `${k}: the last reconcile saw the last version`);
  await c.shutdown();
  await informer.stop();
});

test('controller: a failing reconcile is retried after doubling delays on the clock; success starts over', async () => {
  const { clock, fake, informer } = setup();
  fake.create(thing('ns', 'f'));
  let failures = 5;
  const at: number[] = [];
  const errors: string[] = [];
  const c = new Controller<Thing>({
    name: 't', primary: informer, kind: 'Thing', apiVersion: 'v1', clock,
    retry: { startMs: 10, maxMs: 80 },
    onError: (k, e) => errors.push(`${k}: ${(e as Error).message}`),
    reconcile: async () => {
      at.push(clock.now());
      if (failures-- > 0) throw new Error('not yet');
    },
  });
  await c.start();
  await settle();
  const delays: number[] = [];
  while (clock.timers().length) delays.push(await clock.next());
  assert.deepEqual(delays, [10, 20, 40, 80, 80]);
  assert.deepEqual(at.slice(1).map((t, i) => t - at[i]), [10, 20, 40, 80, 80], 'each retry ran when its delay was up');
  assert.equal(errors.length, 5);
  assert.equal(errors[0], 'ns/f: not yet');
  failures = 1;
  fake.modify('ns/f', (o) => { o.spec = { n: 1 }; });
  await settle();
  assert.deepEqual(clock.timers(), [10], 'the success forgot the old delays');
  await clock.next();
  assert.equal(c.pending, 0);
  await c.shutdown();
  await informer.stop();
});

test('controller: requeueAfter brings the key back when the clock says so', async () => {
  const { clock, fake, informer } = setup();
  fake.create(thing('ns', 'r'));
  let calls = 0;
  const c = new Controller<Thing>({
    name: 't', primary: informer, kind: 'Thing', apiVersion: 'v1', clock,
    reconcile: () => (++calls < 3 ? { requeueAfter: 5000 } : undefined),
  });
  await c.start();
  await settle();
  assert.equal(calls, 1);
  await clock.advance(4999);
  assert.equal(calls, 1);
  await clock.advance(1);
  assert.equal(calls, 2);
  await clock.advance(5000);
  assert.equal(calls, 3);
  await clock.advance(60_000);
  assert.equal(calls, 3, 'no requeue asked, none made');
  await c.shutdown();
  await informer.stop();
});

test('controller: events on owned objects wake their controlling owner, only when it is ours and still there', async () => {
  const clock = new FakeClock();
  const sets = new FakeListWatch<Thing>();
  const pods = new FakeListWatch<Thing>();
  const rs = sets.create({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { namespace: 'ns', name: 'web' } });
  const node = sets.create({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'cluster-owner' } });
  const ref = (over: Partial<OwnerReference> = {}): OwnerReference[] => [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: rs.metadata.uid!, controller: true, ...over }];
  pods.create(thing('ns', 'mine', { owners: ref() }));
  pods.create(thing('ns', 'v2', { owners: ref({ apiVersion: 'apps/v2' }) }));
  pods.create(thing('ns', 'cluster', { owners: ref({ name: 'cluster-owner', uid: node.metadata.uid! }) }));
  pods.create(thing('ns', 'other-kind', { owners: ref({ kind: 'Deployment' }) }));
  pods.create(thing('ns', 'other-group', { owners: ref({ apiVersion: 'example.com/v1' }) }));
  pods.create(thing('ns', 'not-controller', { owners: ref({ controller: false }) }));
  pods.create(thing('ns', 'stale-uid', { owners: ref({ uid: 'uid-of-a-deleted-namesake' }) }));
  pods.create(thing('ns', 'orphan-of-missing', { owners: ref({ name: 'missing' }) }));
  pods.create(thing('other', 'other-ns', { owners: ref() }));
  pods.create(thing('ns', 'orphan'));
  const rsInformer = new Informer<Thing>({ listWatch: sets, clock });
  const podInformer = new Informer<Thing>({ listWatch: pods, clock, resyncMs: 1000 });
  const calls: string[] = [];
  const c = new Controller<Thing>({
    name: 'rs', primary: rsInformer, kind: 'ReplicaSet', apiVersion: 'apps/v1', owns: [podInformer], clock,
    reconcile: (key) => { calls.push(key); },
  });
  await c.start();
  await settle();
  assert.deepEqual(calls.sort(), ['cluster-owner', 'ns/web'], 'the start: every owner once, fan-in deduped with it');
  calls.length = 0;

  for (const p of ['orphan', 'other-kind', 'other-group', 'not-controller', 'stale-uid', 'orphan-of-missing', 'other-ns']) {
    pods.modify(`${p === 'other-ns' ? 'other' : 'ns'}/${p}`, (o) => { o.spec = { n: 1 }; });
  }
  await settle();
  assert.deepEqual(calls, [], 'none of these is a live child of ours');
  await clock.advance(1000);
  assert.deepEqual(calls, [], 'a resync of children wakes nobody');

  pods.modify('ns/mine', (o) => { o.spec = { n: 1 }; });
  await settle();
  assert.deepEqual(calls, ['ns/web']);
  pods.modify('ns/v2', (o) => { o.spec = { n: 1 }; });
  await settle();
  assert.deepEqual(calls, ['ns/web', 'ns/web'], 'another version of the same group is the same kind');
  pods.modify('ns/cluster', (o) => { o.spec = { n: 1 }; });
  await settle();
  assert.deepEqual(calls.at(-1), 'cluster-owner', 'a cluster-scoped owner is keyed by its name');
  pods.remove('ns/mine');
  await settle();
  assert.deepEqual(calls.at(-1), 'ns/web', 'a deleted child wakes its owner');
  calls.length = 0;
  // Adoption moves a child from one owner to another: both hear of it.
  pods.modify('ns/cluster', (o) => { o.metadata.ownerReferences = ref(); });
  await settle();
  assert.deepEqual(calls.sort(), ['cluster-owner', 'ns/web']);
  await c.shutdown();
  await Promise.all([rsInformer.stop(), podInformer.stop()]);
});

test('controller: workers start only once every informer has synced', async () => {
  const clock = new FakeClock();
  const a = new FakeListWatch<Thing>();
  const b = new FakeListWatch<Thing>();
  a.create(thing('ns', 'x'));
  b.failLists(new Error('not up yet'));
  const ia = new Informer<Thing>({ listWatch: a, clock });
  const ib = new Informer<Thing>({ listWatch: b, clock });
  const calls: string[] = [];
  const c = new Controller<Thing>({ name: 't', primary: ia, kind: 'Thing', apiVersion: 'v1', owns: [ib], clock, reconcile: (k) => { calls.push(k); } });
  let running: boolean | undefined;
  void c.start().then((ok) => { running = ok; });
  await settle();
  assert.equal(ia.hasSynced(), true);
  a.create(thing('ns', 'y'));
  await settle();
  assert.deepEqual(calls, [], 'the owned cache is not filled yet');
  await clock.advance(800);
  assert.equal(running, true);
  assert.deepEqual(calls.sort(), ['ns/x', 'ns/y']);
  await c.shutdown();
  await Promise.all([ia.stop(), ib.stop()]);
});

test('controller: shutdown waits for the reconciles in flight and then takes nothing more', async () => {
  const { clock, fake, informer } = setup();
  fake.create(thing('ns', 'a'));
  fake.create(thing('ns', 'b'));
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  const calls: string[] = [];
  let finished = 0;
  const c = new Controller<Thing>({
    name: 't', primary: informer, kind: 'Thing', apiVersion: 'v1', workers: 2, clock,
    reconcile: async (key) => {
      calls.push(key);
      await held;
      finished++;
      if (key === 'ns/b') throw new Error('fails on the way out');
    },
  });
  await c.start();
  await settle();
  assert.equal(calls.length, 2);
  let done = false;
  const stopping = c.shutdown().then(() => { done = true; });
  await settle();
  assert.equal(done, false, 'still waiting for the two in flight');
  release();
  await stopping;
  assert.equal(finished, 2, 'both ran to the end before shutdown resolved');
  assert.deepEqual(clock.timers(), [], 'no retry scheduled after shutdown');
  fake.modify('ns/a', (o) => { o.spec = { n: 1 }; });
  c.enqueue('ns/a');
  await settle();
  await clock.advance(60_000);
  assert.equal(calls.length, 2);
  await informer.stop();
});
