/** The shim's json-file log: docker's line format, 16 KiB partials, rotation, and readLogs (tail, since, follow). */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonLog, readLogs, formatTime, parseTime, rotatedFiles, type LogEntry } from '../../src/engine/shim/jsonlog.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'pier-jsonlog-')); dirs.push(d); return d; };
const lines = (p: string) => readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogEntry);
const collect = async (it: AsyncIterable<LogEntry>) => { const out: LogEntry[] = []; for await (const e of it) out.push(e); return out; };

test('RFC3339Nano times: trimmed fraction, round trip through parseTime', () => {
  assert.equal(formatTime(1_767_225_600_123_456_789n), '2026-01-01T00:00:00.123456789Z');
  assert.equal(formatTime(1_767_225_600_120_000_000n), '2026-01-01T00:00:00.12Z');
  assert.equal(formatTime(1_767_225_600_000_000_000n), '2026-01-01T00:00:00Z');
  assert.equal(parseTime('2026-01-01T00:00:00.12Z'), 1_767_225_600_120_000_000n);
  assert.equal(parseTime('2026-01-01T00:00:00.123456789Z'), 1_767_225_600_123_456_789n);
  assert.equal(parseTime('2026-01-01T01:00:00+01:00'), 1_767_225_600_000_000_000n);
  assert.equal(parseTime('nonsense'), undefined);
});

test('lines become entries; a partial line waits; stderr is its own stream', () => {
  const d = tmp();
  const log = new JsonLog({ path: join(d, 'c.log') });
  log.write('stdout', Buffer.from('one\ntw'), 'T1');
  log.write('stderr', Buffer.from('oops\n'), 'T2');
  log.write('stdout', Buffer.from('o\nthree'), 'T3');
  log.end('stdout', 'T4'); // end of stream flushes "three" without a newline
  log.close();
  assert.deepEqual(lines(join(d, 'c.log')), [
    { log: 'one\n', stream: 'stdout', time: 'T1' },
    { log: 'oops\n', stream: 'stderr', time: 'T2' },
    { log: 'two\n', stream: 'stdout', time: 'T3' },
    { log: 'three', stream: 'stdout', time: 'T4' },
  ]);
  assert.match(readFileSync(join(d, 'c.log'), 'utf8'), /^\{"log":"one\\n","stream":"stdout","time":"T1"\}\n/, 'docker key order');
});

test('a line over 16 KiB is written as 16 KiB partial entries', () => {
  const d = tmp();
  const log = new JsonLog({ path: join(d, 'c.log') });
  log.write('stdout', Buffer.from('x'.repeat(40 * 1024) + '\n'));
  log.write('stdout', Buffer.from('y'.repeat(20 * 1024))); // no newline yet: 16 KiB goes out now
  const before = lines(join(d, 'c.log'));
  assert.deepEqual(before.map((e) => e.log.length), [16384, 16384, 8 * 1024 + 1, 16384]);
  assert.ok(!before[0].log.endsWith('\n') && before[2].log.endsWith('\n'));
  log.close();
  assert.equal(lines(join(d, 'c.log')).at(-1)!.log, 'y'.repeat(4 * 1024));
});

test('rotation keeps maxFiles files of at most maxSize; readLogs reads them in order and tails across them', async () => {
  const d = tmp();
  const path = join(d, 'container.log');
  const log = new JsonLog({ path, maxSize: 1000, maxFiles: 3 });
  for (let i = 0; i < 200; i++) log.write(i % 2 ? 'stderr' : 'stdout', Buffer.from(`line ${i}\n`));
  log.close();
  assert.deepEqual(rotatedFiles(path), [`${path}.2`, `${path}.1`]);
  assert.ok(!existsSync(`${path}.3`));
  for (const f of [path, `${path}.1`, `${path}.2`]) assert.ok(statSync(f).size <= 1000, f);
  const all = await collect(readLogs(path));
  const nums = all.map((e) => Number(/line (\d+)/.exec(e.log)![1]));
  assert.equal(nums.at(-1), 199);
  assert.deepEqual(nums, nums.map((_, i) => nums[0] + i), 'contiguous, oldest first');
  assert.ok(nums.length < 200 && nums.length > 20);
  assert.equal(all[1].stream, nums[1] % 2 ? 'stderr' : 'stdout');
  const tail = await collect(readLogs(path, { tail: 30 }));
  assert.deepEqual(tail.map((e) => e.log), nums.slice(-30).map((n) => `line ${n}\n`), 'tail spans the rotated files');
  assert.deepEqual(await collect(readLogs(path, { tail: 0 })), []);
  assert.equal((await collect(readLogs(path, { tail: 100_000 }))).length, nums.length);
});

test('maxFiles 1 truncates in place', () => {
  const d = tmp();
  const path = join(d, 'container.log');
  const log = new JsonLog({ path, maxSize: 500, maxFiles: 1 });
  for (let i = 0; i < 100; i++) log.write('stdout', Buffer.from(`line ${i}\n`));
  log.close();
  assert.deepEqual(rotatedFiles(path), []);
  assert.ok(statSync(path).size <= 500);
  assert.match(lines(path).at(-1)!.log, /line 99/);
});

test('since/until and timestamps', async () => {
  const d = tmp();
  const path = join(d, 'container.log');
  writeFileSync(path, [
    { log: 'a\n', stream: 'stdout', time: '2026-01-01T00:00:01.5Z' },
    { log: 'b\n', stream: 'stdout', time: '2026-01-01T00:00:02.25Z' },
    { log: 'c\n', stream: 'stderr', time: '2026-01-01T00:00:03Z' },
  ].map((e) => JSON.stringify(e) + '\n').join('') + 'not json\n');
  const got = await collect(readLogs(path, { since: new Date('2026-01-01T00:00:02Z'), until: new Date('2026-01-01T00:00:02.9Z'), timestamps: true }));
  assert.deepEqual(got, [{ stream: 'stdout', log: '2026-01-01T00:00:02.25Z b\n', time: '2026-01-01T00:00:02.25Z' }]);
});

test('follow: new entries, across a rotation, until the exit file appears', async () => {
  const d = tmp();
  const path = join(d, 'container.log');
  const log = new JsonLog({ path, maxSize: 300, maxFiles: 2 });
  log.write('stdout', Buffer.from('before\n'));
  const seen: string[] = [];
  const done = (async () => { for await (const e of readLogs(path, { follow: true, pollMs: 50 })) seen.push(e.log); })();
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 20; i++) {
    log.write('stdout', Buffer.from(`n${i}\n`));
    await new Promise((r) => setTimeout(r, 5));
  }
  log.close();
  writeFileSync(join(d, 'exit.json'), '{"exitCode":0}');
  await done;
  assert.equal(seen[0], 'before\n');
  // every entry written after the follower started arrives once, in order, despite rotations
  assert.deepEqual(seen.slice(1), Array.from({ length: 20 }, (_, i) => `n${i}\n`));
});

test('follow ends on abort; an exited container just reads', async () => {
  const d = tmp();
  const path = join(d, 'container.log');
  new JsonLog({ path }).close();
  const ac = new AbortController();
  const p = collect(readLogs(path, { follow: true, signal: ac.signal }));
  setTimeout(() => ac.abort(), 50);
  assert.deepEqual(await p, []);
  writeFileSync(join(d, 'exit.json'), '{}');
  assert.deepEqual(await collect(readLogs(path, { follow: true })), []);
});

/** Settles with `p`, or rejects after `ms` (a follower that never ends fails the test). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: still following after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

/** This process's fds to a deleted file under dir. */
const deletedUnder = (dir: string) => readdirSync('/proc/self/fd').flatMap((fd) => {
  try { const t = readlinkSync(`/proc/self/fd/${fd}`); return t.startsWith(dir) && t.endsWith(' (deleted)') ? [t] : []; } catch { return []; }
});

test('follow ends when stop aborts, with the log removed and no exit file ever: all entries, no fd left', async () => {
  for (let round = 0; round < 20; round++) {
    const d = tmp();
    const path = join(d, 'container.log');
    const log = new JsonLog({ path });
    log.write('stdout', Buffer.from('first\n'));
    const stop = new AbortController();
    const seen: string[] = [];
    const done = (async () => { for await (const e of readLogs(path, { follow: true, stop: stop.signal })) seen.push(e.log); })();
    // The follower is under way (it has the file open) before the removal, as in pierd.
    for (let i = 0; i < 500 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 2));
    // what pierd's removal does: the record (log, and the exit file the follower waits for) goes
    await new Promise((r) => setTimeout(r, round % 4 * 10));
    log.write('stdout', Buffer.from('last\n'));
    log.close();
    rmSync(d, { recursive: true, force: true });
    stop.abort();
    await within(done, 10_000, `round ${round}`);
    assert.deepEqual(seen, ['first\n', 'last\n'], `round ${round}`);
    assert.deepEqual(deletedUnder(d), [], `round ${round}: the deleted log is still open`);
  }
});

test('a stop aborted before following starts reads what there is and returns', async () => {
  const d = tmp();
  const path = join(d, 'container.log');
  const log = new JsonLog({ path });
  log.write('stdout', Buffer.from('only\n'));
  log.close();
  const stop = new AbortController();
  stop.abort();
  const got = await within(collect(readLogs(path, { follow: true, stop: stop.signal })), 10_000, 'follower');
  assert.deepEqual(got.map((e) => e.log), ['only\n']);
  assert.deepEqual(deletedUnder(d), []);
});
