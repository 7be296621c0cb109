import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFlags, str, bool, list } from '../../src/cli/args.ts';

const specs = [
  { name: 'log', value: true },
  { name: 'log-format', value: true },
  { name: 'debug' },
  { name: 'env', short: 'e', value: true, multi: true },
  { name: 'no-subreaper' },
];

test('both --flag value and --flag=value forms parse', () => {
  const a = parseFlags(['--log-format=json', '--log', '/x.json', 'create'], specs, { what: 't' });
  assert.equal(str(a, 'log-format'), 'json');
  assert.equal(str(a, 'log'), '/x.json');
  assert.deepEqual(a.rest, ['create']);
  const b = parseFlags(['--log-format', 'json', 'create'], specs, { what: 't' });
  assert.equal(str(b, 'log-format'), 'json');
});

test('global parsing stops at the command so command flags are left alone', () => {
  const a = parseFlags(['--debug', 'create', '--bundle', 'x', 'id'], specs, { what: 't', stopAtPositional: true });
  assert.equal(bool(a, 'debug'), true);
  assert.deepEqual(a.rest, ['create', '--bundle', 'x', 'id']);
});

test('single-dash long flags, short aliases, repeats and bool=false', () => {
  const a = parseFlags(['-no-subreaper', '-e', 'A=1', '--env=B=2', '--debug=false', 'id'], specs, { what: 't' });
  assert.equal(bool(a, 'no-subreaper'), true);
  assert.deepEqual(list(a, 'env'), ['A=1', 'B=2']);
  assert.equal(bool(a, 'debug'), false);
  assert.deepEqual(a.rest, ['id']);
});

test('unknown flags and missing values are one clear error', () => {
  assert.throws(() => parseFlags(['--nope'], specs, { what: 'create' }), /create: unknown flag --nope/);
  assert.throws(() => parseFlags(['--log'], specs, { what: 'x' }), /flag --log needs a value/);
  assert.throws(() => parseFlags(['--debug=maybe'], specs, { what: 'x' }), /takes true or false/);
});

test('-- ends flags', () => {
  const a = parseFlags(['id', '--', '--debug'], specs, { what: 't' });
  assert.deepEqual(a.rest, ['id', '--debug']);
});
