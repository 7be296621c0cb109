import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { parseSignal, signalName, SIGNALS } from '../../src/runtime/signals.ts';
import { PierError } from '../../src/common/errors.ts';

test('numbers, names with and without SIG, any case', () => {
  for (const s of ['9', 'KILL', 'SIGKILL', 'sigkill', 'kill', ' SIGKILL ']) assert.equal(parseSignal(s), 9, s);
  assert.equal(parseSignal('TERM'), 15);
  assert.equal(parseSignal('SIGCHLD'), 17);
  assert.equal(parseSignal('cld'), 17);
  assert.equal(parseSignal('IOT'), 6);
  assert.equal(parseSignal('64'), 64);
});

test('signal numbers agree with Node\'s view of this platform', () => {
  for (const [name, n] of Object.entries(SIGNALS)) {
    const node = (constants.signals as Record<string, number>)[`SIG${name}`];
    if (node !== undefined) assert.equal(n, node, name);
  }
});

test('realtime signals', () => {
  assert.equal(parseSignal('RTMIN'), 34);
  assert.equal(parseSignal('RTMIN+3'), 37);
  assert.equal(parseSignal('SIGRTMIN+3'), 37);
  assert.equal(parseSignal('sigrtmin+30'), 64);
  assert.equal(parseSignal('RTMAX'), 64);
  assert.equal(parseSignal('SIGRTMAX-2'), 62);
});

test('invalid signals are PierErrors', () => {
  for (const s of ['FOO', 'SIGFOO', '0', '65', '-9', '', 'RTMIN+31', 'RTMAX-31', 'RTMIN-1', 'RTMAX+1', 'SIG', '9x']) {
    assert.throws(() => parseSignal(s), (e: unknown) => e instanceof PierError && e.message === `invalid signal ${JSON.stringify(s)}`, s);
  }
});

test('signalName round-trips', () => {
  assert.equal(signalName(9), 'SIGKILL');
  assert.equal(signalName(6), 'SIGABRT');
  assert.equal(signalName(17), 'SIGCHLD');
  assert.equal(signalName(34), 'SIGRTMIN');
  assert.equal(signalName(37), 'SIGRTMIN+3');
  assert.equal(signalName(64), 'SIGRTMAX');
  assert.equal(signalName(32), 'SIG32');
  for (let n = 1; n <= 64; n++) if (n !== 32 && n !== 33) assert.equal(parseSignal(signalName(n)), n);
  assert.throws(() => signalName(0), PierError);
  assert.throws(() => signalName(65), PierError);
});
