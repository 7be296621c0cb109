import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRlimits, RLIMIT_RESOURCES, RLIM_INFINITY } from '../../src/runtime/rlimits.ts';
import { PierError } from '../../src/common/errors.ts';

const fails = (f: () => unknown, msg: string) =>
  assert.throws(f, (e: unknown) => e instanceof PierError && e.message === msg);

test('resource numbers are the Linux ones', () => {
  assert.equal(Object.keys(RLIMIT_RESOURCES).length, 16);
  assert.equal(RLIMIT_RESOURCES.RLIMIT_CPU, 0);
  assert.equal(RLIMIT_RESOURCES.RLIMIT_CORE, 4);
  assert.equal(RLIMIT_RESOURCES.RLIMIT_NPROC, 6);
  assert.equal(RLIMIT_RESOURCES.RLIMIT_NOFILE, 7);
  assert.equal(RLIMIT_RESOURCES.RLIMIT_AS, 9);
  assert.equal(RLIMIT_RESOURCES.RLIMIT_RTTIME, 15);
});

test('parses in order to bigint soft/hard', () => {
  assert.deepEqual(parseRlimits([]), []);
  assert.deepEqual(
    parseRlimits([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 }, { type: 'RLIMIT_CORE', soft: 0, hard: 0 }]),
    [{ resource: 7, soft: 1024n, hard: 4096n }, { resource: 4, soft: 0n, hard: 0n }],
  );
});

test('2^64-1 from JSON (which parses to 2^64) means RLIM_INFINITY', () => {
  const [r] = parseRlimits(JSON.parse('[{"type":"RLIMIT_STACK","soft":8388608,"hard":18446744073709551615}]'));
  assert.deepEqual(r, { resource: 3, soft: 8388608n, hard: RLIM_INFINITY });
  assert.equal(RLIM_INFINITY, 2n ** 64n - 1n);
});

test('errors: unknown type, soft above hard, duplicates, bad numbers', () => {
  fails(() => parseRlimits([{ type: 'RLIMIT_FOO', soft: 1, hard: 1 }]), 'process.rlimits[0].type: unknown rlimit type "RLIMIT_FOO"');
  fails(() => parseRlimits([{ type: 'nofile', soft: 1, hard: 1 }]), 'process.rlimits[0].type: unknown rlimit type "nofile"');
  fails(
    () => parseRlimits([{ type: 'RLIMIT_NOFILE', soft: 2048, hard: 1024 }]),
    'process.rlimits[0]: RLIMIT_NOFILE soft limit 2048 is above its hard limit 1024',
  );
  fails(
    () => parseRlimits([{ type: 'RLIMIT_NOFILE', soft: 1, hard: 2 }, { type: 'RLIMIT_CPU', soft: 1, hard: 2 }, { type: 'RLIMIT_NOFILE', soft: 1, hard: 2 }]),
    'process.rlimits[2].type: RLIMIT_NOFILE is given more than once',
  );
  fails(() => parseRlimits([{ type: 'RLIMIT_CPU', soft: -1, hard: 2 }]), 'process.rlimits[0].soft must be a non-negative integer, got -1');
  fails(() => parseRlimits([{ type: 'RLIMIT_CPU', soft: 1, hard: 2.5 }]), 'process.rlimits[0].hard must be a non-negative integer, got 2.5');
});
