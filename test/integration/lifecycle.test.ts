/**
 * CLI contracts real callers use beyond create/start/delete: --preserve-fds, update --resources -
 * (containerd), kill --all, ps --format json, list --format json, pid files without a newline.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseSpec, makeBundle } from '../helpers/rootfs.ts';
import { PIER_RUNTIME, pr, prOk } from '../helpers/pier.ts';

const root = mkdtempSync(join(tmpdir(), 'pier-life-root-'));
const dirs: string[] = [root];
after(() => {
  for (const id of prOk(root, ['list', '--quiet']).split('\n').filter(Boolean)) pr(root, ['delete', '--force', id]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const waitStopped = async (id: string) => {
  for (let i = 0; i < 200 && JSON.parse(prOk(root, ['state', id])).status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 10));
};

test('--preserve-fds hands fd 3 to the container', () => {
  const b = makeBundle(baseSpec(['sh', '-c', 'cat <&3']));
  dirs.push(b);
  const file = join(b, 'fd3.txt');
  writeFileSync(file, 'through fd 3\n');
  const fd = openSync(file, 'r');
  try {
    const r = spawnSync(PIER_RUNTIME, ['--root', root, 'run', '--bundle', b, '--preserve-fds', '1', 'pfd'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', fd] });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'through fd 3\n');
  } finally {
    closeSync(fd);
  }
});

test('update --resources - (stdin), ps/list --format json, pid file, kill --all', async () => {
  const b = makeBundle(baseSpec(['sh', '-c', 'sleep 300 & sleep 300; :']));
  dirs.push(b);
  const pidFile = join(b, 'pid');
  prOk(root, ['create', '--bundle', b, '--pid-file', pidFile, 'life']);
  prOk(root, ['start', 'life']);
  const state = JSON.parse(prOk(root, ['state', 'life']));
  assert.equal(readFileSync(pidFile, 'utf8'), String(state.pid), 'bare digits, no newline');
  prOk(root, ['update', '--resources', '-', 'life'], { input: JSON.stringify({ pids: { limit: 42 } }) });
  const pidsDir = readdirSync('/sys/fs/cgroup/pids', { recursive: true }).map(String).find((p) => p.endsWith('/life') || p === 'life');
  assert.ok(pidsDir, 'the container has a pids cgroup');
  assert.equal(readFileSync(join('/sys/fs/cgroup/pids', pidsDir, 'pids.max'), 'utf8').trim(), '42');
  let pids: number[] = [];
  for (let i = 0; i < 100 && pids.length < 3; i++) {
    pids = JSON.parse(prOk(root, ['ps', '--format', 'json', 'life']));
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(pids.length, 3, `sh and two sleeps: ${pids}`);
  assert.ok(pids.includes(state.pid));
  const list = JSON.parse(prOk(root, ['list', '--format', 'json']));
  assert.equal(list.find((s: { id: string }) => s.id === 'life').status, 'running');
  prOk(root, ['kill', '--all', 'life', 'KILL']);
  await waitStopped('life');
  assert.deepEqual(JSON.parse(prOk(root, ['ps', '--format', 'json', 'life'])), []);
  prOk(root, ['delete', 'life']);
});
