import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedMutex } from '../../src/common/keyed-mutex.ts';
import { Backoff } from '../../src/common/backoff.ts';
import { WorkQueue } from '../../src/common/workqueue.ts';
import { FakeClock, settle } from '../helpers/fake-clock.ts';

test('keyed mutex: same key in order, one at a time; other keys concurrently; failures do not block', async () => {
  const m = new KeyedMutex();
  const log: string[] = [];
  let inA = 0, maxA = 0;
  const a = (n: number, fail = false) => m.run('a', async () => {
    inA++; maxA = Math.max(maxA, inA);
    log.push(`a${n}<`);
    await new Promise((r) => setTimeout(r, 2));
    log.push(`a${n}>`);
    inA--;
    if (fail) throw new Error(`a${n} failed`);
    return n;
  });
  const b = m.run('b', async () => { log.push('b'); assert.ok(m.held('b')); return 'b'; });
  const results = await Promise.allSettled([a(1), a(2, true), a(3), b]);
  assert.equal(maxA, 1);
  assert.deepEqual(log.filter((x) => x.startsWith('a')), ['a1<', 'a1>', 'a2<', 'a2>', 'a3<', 'a3>']);
  assert.ok(log.indexOf('b') < log.indexOf('a1>'), 'b ran while a1 held its key');
  assert.equal(results[1].status, 'rejected');
  assert.deepEqual(results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<unknown>).value), [1, 3, 'b']);
  await settle();
  assert.equal(m.size, 0, 'no key left behind');
  assert.equal(m.held('a'), false);
});

test('keyed mutex: 500 concurrent increments of a copy never lose one', async () => {
  const m = new KeyedMutex();
  let value = 0;
  await Promise.all(Array.from({ length: 500 }, () => m.run('k', async () => {
    const copy = value;
    await new Promise((r) => setImmediate(r));
    value = copy + 1;
  })));
  assert.equal(value, 500);
});

test('backoff: doubles from start to the cap, starts over after a stable run or reset', () => {
  const b = new Backoff({ startMs: 100, maxMs: 60_000, stableMs: 10_000 });
  const seen = Array.from({ length: 12 }, () => b.next(50));
  assert.deepEqual(seen, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]);
  assert.equal(b.next(10_000), 100);
  assert.equal(b.next(9_999), 200);
  b.reset();
  assert.equal(b.current, 0);
  assert.equal(b.next(), 100);
  assert.throws(() => new Backoff({ startMs: 0, maxMs: 10 }), /startMs/);
});

test('work queue: dedupes, never runs a key twice at once, re-runs a key added while running', async () => {
  const runs: string[] = [];
  let active = 0, maxActive = 0;
  const gates: Record<string, () => void> = {};
  const q = new WorkQueue({
    workers: 4,
    handler: async (k) => {
      runs.push(k);
      active++; maxActive = Math.max(maxActive, active);
      if (k === 'x' && runs.filter((r) => r === 'x').length === 1) await new Promise<void>((r) => { gates.x = r; });
      active--;
    },
  });
  q.add('x'); q.add('x'); q.add('y'); q.add('y');
  await settle();
  assert.deepEqual(runs.sort(), ['x', 'y']);
  q.add('x'); q.add('x'); // while x runs: once more afterwards
  await settle();
  assert.equal(runs.filter((r) => r === 'x').length, 1, 'not twice at once');
  gates.x();
  await q.idle();
  assert.equal(runs.filter((r) => r === 'x').length, 2);
  assert.ok(maxActive <= 2);
  await q.shutdown();
});

test('work queue: requeueAfter and failures run on the clock; success forgets the backoff', async () => {
  const clock = new FakeClock();
  const times: number[] = [];
  let fails = 3;
  const errors: string[] = [];
  const q = new WorkQueue({
    clock,
    retry: { startMs: 10, maxMs: 1000 },
    onError: (k, e) => errors.push(`${k}: ${(e as Error).message}`),
    handler: async (k) => {
      times.push(clock.now());
      if (k === 'f') { if (fails-- > 0) throw new Error('boom'); return; }
      if (times.length < 3) return { requeueAfter: 500 };
    },
  });
  const t0 = clock.now();
  q.add('f');
  await settle();
  await clock.advance(10);
  await clock.advance(20);
  await clock.advance(40);
  assert.deepEqual(times.map((t) => t - t0), [0, 10, 30, 70], 'retries after 10, 20, 40 ms');
  assert.equal(errors.length, 3);
  assert.equal(q.length, 0, 'success leaves nothing delayed');
  times.length = 0;
  q.add('r');
  await settle();
  await clock.advance(499);
  assert.equal(times.length, 1);
  await clock.advance(1);
  assert.equal(times.length, 2);
  await clock.advance(500);
  assert.equal(times.length, 3);
  await clock.advance(5000);
  assert.equal(times.length, 3, 'no requeue asked: done');
  // an earlier delay wins; forget() drops a pending one
  q.addAfter('d', 100); q.addAfter('d', 50); q.addAfter('d', 300);
  assert.deepEqual(clock.timers(), [50]);
  q.forget('d');
  await clock.advance(1000);
  assert.equal(times.length, 3);
  await q.shutdown();
  q.add('late');
  await settle();
  assert.equal(times.length, 3, 'a shut queue takes nothing');
});
