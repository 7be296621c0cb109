import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CAP_NAMES, DEFAULT_CAPS, DOCKER_DEFAULT_CAPS, capMask, capName, capNames, capNumber, lastCap } from '../../src/runtime/caps.ts';
import { PierError } from '../../src/common/errors.ts';

test('names and numbers match linux/capability.h', () => {
  assert.equal(CAP_NAMES.length, 41);
  const known: [string, number][] = [
    ['CAP_CHOWN', 0], ['CAP_KILL', 5], ['CAP_SETPCAP', 8], ['CAP_NET_BIND_SERVICE', 10], ['CAP_NET_RAW', 13],
    ['CAP_SYS_CHROOT', 18], ['CAP_SYS_ADMIN', 21], ['CAP_MKNOD', 27], ['CAP_AUDIT_WRITE', 29], ['CAP_SETFCAP', 31],
    ['CAP_SYSLOG', 34], ['CAP_AUDIT_READ', 37], ['CAP_PERFMON', 38], ['CAP_BPF', 39], ['CAP_CHECKPOINT_RESTORE', 40],
  ];
  for (const [name, n] of known) {
    assert.equal(capNumber(name), n, name);
    assert.equal(capName(n), name);
  }
  assert.equal(new Set(CAP_NAMES).size, CAP_NAMES.length);
  assert.equal(capNumber('CAP_FOO'), undefined);
  assert.equal(capName(41), undefined);
});

test('capMask sets one bit per capability', () => {
  assert.equal(capMask([], 'f', 40), 0n);
  assert.equal(capMask(['CAP_CHOWN'], 'f', 40), 1n);
  assert.equal(capMask(['CAP_KILL', 'CAP_KILL'], 'f', 40), 1n << 5n);
  assert.equal(capMask([...DEFAULT_CAPS], 'f', 40), (1n << 29n) | (1n << 5n) | (1n << 10n));
  assert.equal(capMask([...CAP_NAMES], 'f', 40), (1n << 41n) - 1n);
  assert.deepEqual(capNames(capMask([...DOCKER_DEFAULT_CAPS], 'f', 40)).sort(), [...DOCKER_DEFAULT_CAPS].sort());
});

test('capabilities above the kernel\'s last cap are dropped silently', () => {
  assert.equal(capMask(['CAP_BPF', 'CAP_CHECKPOINT_RESTORE', 'CAP_KILL'], 'f', 37), 1n << 5n);
  assert.equal(capMask(['CAP_AUDIT_READ'], 'f', 37), 1n << 37n);
});

test('unknown capability is a PierError naming the field', () => {
  assert.throws(
    () => capMask(['CAP_KILL', 'CAP_FOO'], 'process.capabilities.bounding', 40),
    (e: unknown) => e instanceof PierError && e.message === 'unknown capability "CAP_FOO" in process.capabilities.bounding',
  );
  // Names are exact, as in runc: no lower case, no missing prefix.
  assert.throws(() => capMask(['cap_kill'], 'x', 40), PierError);
  assert.throws(() => capMask(['KILL'], 'x', 40), PierError);
});

test('lastCap reads the running kernel', () => {
  const want = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  assert.equal(lastCap(), want);
  assert.equal(capMask(['CAP_CHOWN'], 'f'), 1n);
});

test('default sets', () => {
  assert.deepEqual([...DEFAULT_CAPS], ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']);
  assert.equal(DOCKER_DEFAULT_CAPS.length, 14);
  assert.ok(!DOCKER_DEFAULT_CAPS.includes('CAP_SYS_ADMIN'));
  for (const c of DOCKER_DEFAULT_CAPS) assert.notEqual(capNumber(c), undefined, c);
});
