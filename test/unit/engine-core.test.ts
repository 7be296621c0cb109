/**
 * The engine's services on fakes (test/helpers/engine-fakes.ts), without root: the state machine's
 * table, records (copies, revisions, the lock, migration), the lifecycle, restart backoff on a fake
 * clock, --rm, port conflicts, takeover after a daemon restart, and stop/kill/rm -f racing.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerRecords, RECORD_VERSION, migrateRecord } from '../../src/engine/daemon/store.ts';
import { STATUSES, TRANSITIONS, canTransition, checkChange, recordProblems } from '../../src/engine/daemon/state.ts';
import type { ContainerInfo, ContainerStatus } from '../../src/engine/api.ts';
import { fakeEngine } from '../helpers/engine-fakes.ts';
import { settle } from '../helpers/fake-clock.ts';

function record(id: string, status: ContainerStatus = 'created'): ContainerInfo {
  const up = status === 'running' || status === 'paused';
  return {
    id, revision: 1, name: `c${id.slice(0, 6)}`, created: new Date().toISOString(), image: 'busybox:latest', imageId: 'sha256:x', command: ['sh'],
    config: { image: 'busybox' },
    state: { status, pid: up ? 10 : 0, shimPid: up ? 9 : 0, oomKilled: false, restartCount: 0, manuallyStopped: false, ...(up ? { startedAt: new Date().toISOString() } : {}), ...(status === 'restarting' ? { restartAt: 0 } : {}) },
    mounts: [], network: { mode: 'none', networks: [], ips: {}, ports: [] }, rootfs: '/nonexistent', logPath: '/dev/null', shimSocket: '/nonexistent.sock', runtimeRoot: '/nonexistent',
  };
}

const ID = (n: number) => n.toString(16).padStart(64, '0');

describe('the state machine', () => {
  test('every transition outside the table is refused, every one in it is taken', () => {
    let refused = 0, taken = 0;
    for (const from of STATUSES) {
      for (const to of STATUSES) {
        const before = record(ID(1), from);
        const after = record(ID(1), to);
        after.revision = 2;
        if (canTransition(from, to)) {
          checkChange(before, after);
          taken++;
        } else {
          assert.throws(() => checkChange(before, after), (err: { status?: number; message: string }) => err.status === 409 && err.message.includes(`from ${from} to ${to}`), `${from} → ${to}`);
          refused++;
        }
      }
    }
    const inTable = Object.values(TRANSITIONS).reduce((a, l) => a + l.length, 0);
    assert.equal(taken, inTable + STATUSES.length, 'the table plus staying put');
    assert.equal(refused, STATUSES.length * STATUSES.length - taken);
    assert.ok(refused > 20, 'most pairs are illegal');
  });

  test('a record that breaks an invariant is refused', () => {
    const r = record(ID(2), 'running');
    r.state.pid = 0;
    assert.match(recordProblems(r).join(), /running without a pid/);
    assert.throws(() => checkChange(record(ID(2), 'created'), r), /broken record/);
    const e = record(ID(2), 'exited');
    e.state.pid = 5;
    assert.match(recordProblems(e).join(), /exited with a pid/);
  });
});

describe('records', () => {
  test('copies out, revisions up, the lock enforced, nothing written on a refused change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pier-records-'));
    const recs = new ContainerRecords(dir);
    const r = recs.insert(record(ID(3)));
    assert.equal(r.revision, 1);
    const copy = recs.get(ID(3));
    copy.name = 'changed';
    assert.notEqual(recs.get(ID(3)).name, 'changed', 'get hands out a copy');
    await assert.rejects(recs.updateHeld(ID(3), () => undefined), /outside its lock/);
    const u = await recs.update(ID(3), (d) => { d.config.labels = { a: '1' }; });
    assert.equal(u.revision, 2);
    const onDisk = JSON.parse(readFileSync(join(dir, ID(3), 'container.json'), 'utf8'));
    assert.equal(onDisk.version, RECORD_VERSION);
    assert.equal(onDisk.revision, 2);
    // created → exited is not in the table
    await assert.rejects(recs.update(ID(3), (d) => { d.state.status = 'exited'; }), /cannot go from created to exited/);
    assert.equal(recs.get(ID(3)).revision, 2);
    assert.equal(JSON.parse(readFileSync(join(dir, ID(3), 'container.json'), 'utf8')).revision, 2, 'the file is untouched');
    // a throwing edit writes nothing
    await assert.rejects(recs.update(ID(3), (d) => { d.name = 'x'; throw new Error('no'); }), /no/);
    assert.equal(recs.get(ID(3)).name, r.name);
    assert.equal(recs.lockCount, 0);
  });

  test('a record of an older pier is migrated and kept; one of a newer pier is left alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pier-records-'));
    const old = record(ID(4), 'restarting') as Partial<ContainerInfo>;
    delete old.revision;
    delete old.state!.restartAt;
    mkdirSync(join(dir, ID(4)));
    writeFileSync(join(dir, ID(4), 'container.json'), JSON.stringify(old));
    mkdirSync(join(dir, ID(5)));
    const newer = JSON.stringify({ ...record(ID(5)), version: RECORD_VERSION + 1 });
    writeFileSync(join(dir, ID(5), 'container.json'), newer);
    const bad: string[] = [];
    const recs = new ContainerRecords(dir);
    const loaded = recs.load((id, why) => bad.push(`${id}: ${why}`));
    assert.equal(loaded.length, 1);
    assert.equal(loaded[0].revision, 1);
    assert.equal(loaded[0].state.restartAt, 0, 'a restarting v1 record restarts at once');
    assert.deepEqual(recordProblems(loaded[0]), []);
    assert.match(bad.join(), /newer than this pier's/);
    assert.equal(readFileSync(join(dir, ID(5), 'container.json'), 'utf8'), newer, 'never lost');
    assert.throws(() => migrateRecord({ id: 'zz' }), /no container id/);
  });
});

describe('the engine on fakes', () => {
  test('create, start, stop: the stop signal, then SIGKILL after the timeout on the fake clock', async () => {
    const f = await fakeEngine();
    const c = await f.engine.create({ image: 'busybox', name: 'web' });
    await f.engine.start('web');
    assert.equal(f.engine.get('web').state.status, 'running');
    assert.ok(f.networks.sandboxes.has(c.id));
    f.procs.ignore.add('SIGTERM');
    const stopped = f.engine.stop('web', 5);
    await settle();
    assert.equal(f.procs.running(c.id), true, 'SIGTERM ignored');
    await f.clock.advance(4999);
    assert.equal(f.procs.running(c.id), true);
    await f.clock.advance(1);
    const rec = await stopped;
    assert.equal(rec.state.status, 'exited');
    assert.equal(rec.state.exitCode, 137);
    assert.equal(rec.state.manuallyStopped, true);
    assert.ok(!f.networks.sandboxes.has(c.id), 'sandbox torn down at the exit');
    await f.engine.remove('web');
    assert.equal(f.images.rootfs.size, 0);
    await f.close();
  });

  test('restart backoff: on-failure:3 restarts after 100, 200, 400 ms, then stays down', async () => {
    const f = await fakeEngine();
    f.procs.onStart = (id, p) => queueMicrotask(() => p.exit(id, 1));
    await f.engine.create({ image: 'busybox', name: 'crashy', restart: { name: 'on-failure', maxRetries: 3 } });
    await f.engine.start('crashy');
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      // the exit, the record and the restart manager's delay take a few turns of promise jobs
      for (let k = 0; k < 50 && f.clock.timers().length === 0; k++) await settle();
      assert.equal(f.engine.get('crashy').state.status, 'restarting');
      const before = f.procs.starts;
      const d = await f.clock.next();
      await settle();
      assert.equal(f.procs.starts, before + 1, `restart ${i + 1} ran`);
      delays.push(d);
    }
    await settle();
    const rec = f.engine.get('crashy');
    assert.deepEqual(delays, [100, 200, 400]);
    assert.equal(rec.state.status, 'exited');
    assert.equal(rec.state.restartCount, 3);
    assert.deepEqual(f.clock.timers(), [], 'no restart is pending');
    await f.close();
  });

  test('a stop while restarting wins: the container stays down', async () => {
    const f = await fakeEngine();
    f.procs.onStart = (id, p) => queueMicrotask(() => p.exit(id, 0));
    await f.engine.create({ image: 'busybox', name: 'again', restart: { name: 'always' } });
    await f.engine.start('again');
    await settle();
    assert.equal(f.engine.get('again').state.status, 'restarting');
    await f.engine.stop('again');
    const starts = f.procs.starts;
    await f.clock.advance(60_000);
    assert.equal(f.procs.starts, starts);
    assert.equal(f.engine.get('again').state.status, 'exited');
    await f.close();
  });

  test('--rm: the exit removes the container, its rootfs and sandbox; the waiter sees the exit', async () => {
    const f = await fakeEngine();
    const c = await f.engine.create({ image: 'busybox', autoRemove: true });
    await f.engine.start(c.id);
    const waited = f.engine.wait(c.id).catch((e: Error) => e);
    f.procs.exit(c.id, 3);
    await settle();
    await f.engine.settled();
    assert.equal(f.engine.records.find(c.id), undefined);
    assert.equal(f.images.rootfs.size, 0);
    assert.equal(f.networks.sandboxes.size, 0);
    assert.ok(!existsSync(f.engine.records.dirOf(c.id)));
    const w = await waited;
    assert.ok(!(w instanceof Error), 'the waiter got the exit, not a removal');
    assert.equal((w as { exitCode: number }).exitCode, 3);
    await f.close();
  });

  test('a published port is taken until its container is removed', async () => {
    const f = await fakeEngine();
    const ports = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }];
    await f.engine.create({ image: 'busybox', name: 'a', ports });
    await assert.rejects(f.engine.create({ image: 'busybox', name: 'b', ports }), (err: { status?: number; message: string }) => err.status === 409 && /8080\/tcp is already allocated \(container a\)/.test(err.message));
    assert.equal(f.engine.list(true).length, 1, 'nothing made of b');
    await f.engine.remove('a');
    await f.engine.create({ image: 'busybox', name: 'b', ports });
    await f.close();
  });

  test('a duplicate name is refused, also when two creates race', async () => {
    const f = await fakeEngine();
    const r = await Promise.allSettled([f.engine.create({ image: 'busybox', name: 'twin' }), f.engine.create({ image: 'busybox', name: 'twin' })]);
    assert.equal(r.filter((x) => x.status === 'fulfilled').length, 1);
    assert.match(String((r.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason), /already in use/);
    assert.equal(f.images.rootfs.size, 1, 'the loser made no rootfs');
    await f.close();
  });

  test('takeover: a restarted daemon follows running containers, records exits it missed and lost shims', async () => {
    let f = await fakeEngine();
    const a = await f.engine.create({ image: 'busybox', name: 'a' });
    const b = await f.engine.create({ image: 'busybox', name: 'b' });
    const c = await f.engine.create({ image: 'busybox', name: 'c' });
    for (const x of ['a', 'b', 'c']) await f.engine.start(x);
    await f.engine.close();
    // while no daemon runs: b exits (its shim writes the exit file), c's shim dies without one
    f.procs.exit(b.id, 7);
    f.procs.crash(c.id);
    f = await fakeEngine({ root: f.root, clock: f.clock, procs: f.procs, networks: f.networks, images: f.images });
    await settle();
    assert.equal(f.engine.get('a').state.status, 'running');
    assert.equal(f.engine.get('b').state.status, 'exited');
    assert.equal(f.engine.get('b').state.exitCode, 7);
    assert.equal(f.engine.get('c').state.status, 'exited');
    assert.match(f.engine.get('c').state.error ?? '', /shim\) was lost/);
    // the new daemon watches a: its exit is seen
    f.procs.exit(a.id, 0);
    await settle();
    assert.equal(f.engine.get('a').state.status, 'exited');
    assert.ok(!f.networks.sandboxes.has(a.id) && !f.networks.sandboxes.has(b.id) && !f.networks.sandboxes.has(c.id));
    await f.close();
  });

  test('takeover: a restart that was pending when the daemon stopped still happens', async () => {
    let f = await fakeEngine();
    f.procs.onStart = (id, p) => { if (p.starts === 1) queueMicrotask(() => p.exit(id, 1)); };
    await f.engine.create({ image: 'busybox', name: 'r', restart: { name: 'on-failure' } });
    await f.engine.start('r');
    await settle();
    assert.equal(f.engine.get('r').state.status, 'restarting');
    f = await f.restart();
    await f.clock.advance(100);
    await settle();
    assert.equal(f.engine.get('r').state.status, 'running');
    assert.equal(f.engine.get('r').state.restartCount, 1);
    await f.close();
  });

  test('stop, kill and rm -f race on one container 200 times: the record always ends valid', async () => {
    const f = await fakeEngine();
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const c = await f.engine.create({ image: 'busybox', name: `race${i}`, ...(i % 3 === 0 ? { restart: { name: 'always' as const } } : {}) });
      await f.engine.start(c.id);
      // some rounds pause first, some stop with a process that traps SIGTERM
      if (i % 5 === 0) await f.engine.pause(c.id);
      if (i % 4 === 0) f.procs.ignore.add('SIGTERM'); else f.procs.ignore.delete('SIGTERM');
      const ops = [
        () => f.engine.stop(c.id, 1),
        () => f.engine.kill(c.id, i % 2 ? 'SIGKILL' : 'TERM'),
        () => f.engine.remove(c.id, { force: true }),
        () => f.engine.start(c.id),
      ];
      // a different order each round
      const order = ops.map((op, k) => ({ op, k: (k * 7 + i) % ops.length })).sort((x, y) => x.k - y.k);
      const done = Promise.allSettled(order.map(({ op }) => op()));
      // the fake clock drives the stop timeouts
      for (let t = 0; t < 5; t++) await f.clock.advance(500);
      const r = await done;
      await f.engine.settled();
      const rec = f.engine.records.find(c.id);
      const end = rec ? rec.state.status : 'removed';
      outcomes.set(end, (outcomes.get(end) ?? 0) + 1);
      if (rec) {
        assert.deepEqual(recordProblems(rec), [], `round ${i}: ${JSON.stringify(rec.state)}`);
        assert.equal(f.procs.running(c.id), rec.state.status === 'running' || rec.state.status === 'paused', `round ${i}: the record matches the process`);
        await f.engine.remove(c.id, { force: true });
        for (let t = 0; t < 3; t++) await f.clock.advance(500);
      }
      assert.equal(f.engine.records.find(c.id), undefined, `round ${i}: removed`);
      assert.equal(f.procs.running(c.id), false, `round ${i}: no process left`);
      for (const x of r) if (x.status === 'rejected') assert.match(String(x.reason), /not running|being removed|no such container|is not paused|cannot go/, `round ${i}`);
    }
    assert.equal(f.networks.sandboxes.size, 0, 'no sandbox left');
    assert.equal(f.images.rootfs.size, 0, 'no rootfs left');
    assert.equal(f.engine.records.lockCount, 0, 'no lock held');
    assert.equal(outcomes.get('removed'), 200, `every rm -f won in the end: ${JSON.stringify([...outcomes])}`);
    await f.close();
  });
});
