/** Pure parts of the registry client: references, challenges, upload ranges, sizes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Progress, formatBytes, isLoopbackHost, parseChallenge, parseRemoteReference, rangeEnd, mapLimit } from '../../src/registry/client/index.ts';

test('remote references need a host; tag defaults to latest', () => {
  assert.deepEqual(parseRemoteReference('127.0.0.1:5000/library/busybox'), { host: '127.0.0.1:5000', repository: 'library/busybox', tag: 'latest', digest: undefined });
  assert.deepEqual(parseRemoteReference('localhost/x:1'), { host: 'localhost', repository: 'x', tag: '1', digest: undefined });
  assert.equal(parseRemoteReference('reg.example.com/a/b@sha256:' + 'a'.repeat(64)).digest, 'sha256:' + 'a'.repeat(64));
  assert.throws(() => parseRemoteReference('busybox:latest'), /names no registry/);
  assert.throws(() => parseRemoteReference('library/busybox'), /names no registry/);
  assert.throws(() => parseRemoteReference('127.0.0.1:5000/Bad'), /lowercase/);
});

test('loopback hosts', () => {
  for (const h of ['127.0.0.1:5000', 'localhost', 'localhost:80', '[::1]:5000', '127.1.2.3']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['10.0.0.1:5000', 'registry.example.com', 'localhost.example.com']) assert.equal(isLoopbackHost(h), false, h);
});

test('WWW-Authenticate challenges', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"'), {
    scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' },
  });
  assert.deepEqual(parseChallenge('Basic realm="pier test"'), { scheme: 'basic', params: { realm: 'pier test' } });
  assert.deepEqual(parseChallenge('Basic realm=plain'), { scheme: 'basic', params: { realm: 'plain' } });
});

test('upload Range headers give the next offset', () => {
  assert.equal(rangeEnd({ headers: { range: '0-0' } }), 0);
  assert.equal(rangeEnd({ headers: { range: '0-131071' } }), 131072);
  assert.equal(rangeEnd({ headers: { range: 'bytes=0-9' } }), 10);
  assert.equal(rangeEnd({ headers: {} }), 0);
});

test('sizes and the parallel limit', async () => {
  assert.equal(formatBytes(398), '398 B');
  assert.equal(formatBytes(1_054_625), '1.1 MB');
  let inFlight = 0, peak = 0;
  const out = await mapLimit([1, 2, 3, 4, 5, 6, 7, 8, 9], 4, async (n) => {
    peak = Math.max(peak, ++inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight--;
    return n * 2;
  });
  assert.deepEqual(out, [2, 4, 6, 8, 10, 12, 14, 16, 18]);
  assert.equal(peak, 4);
  await assert.rejects(mapLimit([1, 2], 4, async (n) => { if (n === 2) throw new Error('boom'); return n; }), /boom/);
});

test('progress: a line per blob off a TTY, redrawn rows on one', () => {
  let out = '';
  const plain = new Progress({ out: (s) => { out += s; } });
  plain.start('sha256:' + 'ab'.repeat(32), 2000, 'pushing');
  plain.update('sha256:' + 'ab'.repeat(32), 1000);
  plain.finish('sha256:' + 'ab'.repeat(32), 'pushed', 2000);
  plain.finish('sha256:' + 'cd'.repeat(32), 'exists', 5);
  assert.equal(out, 'abababababab: pushed 2.0 kB\ncdcdcdcdcdcd: exists 5 B\n');
  let tty = '';
  const bars = new Progress({ tty: true, out: (s) => { tty += s; } });
  bars.start('sha256:' + 'ab'.repeat(32), 2000, 'pushing');
  bars.update('sha256:' + 'ab'.repeat(32), 1000);
  assert.match(tty, /\x1b\[1A\x1b\[2Kababababab.*1\.0 kB\/2\.0 kB\n$/);
});
