/**
 * `pier image unpack IMAGE DIR`: a bundle pier-runtime runs; refusals leave nothing behind.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pr, TOP } from '../helpers/pier.ts';

const root = mkdtempSync(join(tmpdir(), 'pier-unpack-'));
const env = { ...process.env, PIER_ROOT: join(root, 'state') };
const pier = (args: string[]) => spawnSync(join(TOP, 'bin', 'pier'), args, { encoding: 'utf8', env, timeout: 60_000 });
after(() => rmSync(root, { recursive: true, force: true }));

test('an unpacked image runs under pier-runtime', () => {
  assert.equal(pier(['image', 'bootstrap', 'busybox']).status, 0);
  const dir = join(root, 'bundle');
  const r = pier(['image', 'unpack', 'busybox', dir]);
  assert.equal(r.status, 0, r.stderr);
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(spec.process.args, ['sh']);
  assert.equal(spec.root.path, join(dir, 'rootfs'));
  spec.process.args = ['sh', '-c', 'echo unpacked $(ls /bin/busybox)'];
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  const run = pr(join(root, 'rt'), ['run', '--bundle', dir, 'unpack-1']);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), 'unpacked /bin/busybox');
});

test('refusals: a non-empty dir, an unknown image — and nothing is left', () => {
  const busy = join(root, 'busy');
  mkdirSync(busy);
  writeFileSync(join(busy, 'keep'), 'x');
  const r1 = pier(['image', 'unpack', 'busybox', busy]);
  assert.equal(r1.status, 1);
  assert.match(r1.stderr, /^pier: cannot unpack into .*busy: it exists and is not empty\n$/);
  assert.equal(readFileSync(join(busy, 'keep'), 'utf8'), 'x');
  const r2 = pier(['image', 'unpack', 'nope:1', join(root, 'never')]);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /image "nope:1" not found/);
  assert.equal(existsSync(join(root, 'never')), false);
});
