/**
 * No leaks: 500 create/start/kill/delete cycles through the CLI leave no state dir, cgroup, mount or
 * process behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseSpec, makeBundle } from '../helpers/rootfs.ts';
import { cgroupDirsMatching, pr, prOk } from '../helpers/pier.ts';

const CYCLES = Number(process.env.PIER_LEAK_CYCLES ?? 500);

function processesWithArgs(marker: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try { return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker); } catch { return false; }
  }).map(Number);
}

test(`${CYCLES} create/start/kill/delete cycles leave nothing behind`, { timeout: 900_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'pier-leak-root-'));
  const marker = `leakmarker${process.pid}`;
  // sh stays the init (a command follows sleep), so its cmdline carries the marker.
  const bundle = makeBundle(baseSpec(['sh', '-c', `sleep 1000; : ${marker}`]));
  const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;
  for (let i = 0; i < CYCLES; i++) {
    const id = `leak-${process.pid}-${i}`;
    prOk(root, ['create', '--bundle', bundle, id]);
    prOk(root, ['start', id]);
    prOk(root, ['kill', id, 'KILL']);
    // delete without --force must succeed once the init is gone: wait for stopped.
    for (let t = 0; t < 200; t++) {
      if (JSON.parse(prOk(root, ['state', id])).status === 'stopped') break;
      await new Promise((r) => setTimeout(r, 5));
    }
    prOk(root, ['delete', id]);
  }
  assert.deepEqual(readdirSync(root), [], 'state dirs left');
  assert.deepEqual(cgroupDirsMatching(new RegExp(`^leak-${process.pid}-`)), [], 'cgroup dirs left');
  assert.deepEqual(processesWithArgs(marker), [], 'processes left');
  const mountsAfter = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;
  assert.equal(mountsAfter, mountsBefore, 'mounts left in the host namespace');
  assert.equal(pr(root, ['state', `leak-${process.pid}-0`]).status, 1);
  rmSync(root, { recursive: true, force: true });
  rmSync(bundle, { recursive: true, force: true });
});
