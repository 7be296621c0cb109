/**
 * Debian's containerd 1.6 drives pier-runtime through its runc v2 shim: `ctr run --runc-binary`.
 * A private containerd (own root, state and socket; CRI off) is started for the test.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxRootfs } from '../helpers/rootfs.ts';
import { PIER_RUNTIME } from '../helpers/pier.ts';

const dir = mkdtempSync('/var/tmp/pier-containerd-');
const sock = join(dir, 'containerd.sock');
const rootfs = join(dir, 'rootfs');
let daemon: ChildProcess;

function ctr(args: string[], timeout = 60_000) {
  return spawnSync('ctr', ['--address', sock, '--namespace', 'piertest', ...args], { encoding: 'utf8', timeout });
}
function ok(args: string[]): string {
  const r = ctr(args);
  assert.equal(r.status, 0, `ctr ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  writeFileSync(join(dir, 'config.toml'), [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${sock}"`,
    '',
  ].join('\n'));
  execFileSync('cp', ['-a', busyboxRootfs(), rootfs]);
  daemon = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(sock), 'containerd did not start');
});

after(async () => {
  for (const id of ['ctr-life']) {
    ctr(['task', 'kill', '--signal', 'SIGKILL', id]);
    ctr(['task', 'delete', '--force', id]);
    ctr(['container', 'delete', id]);
  }
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  spawnSync('umount', ['-R', join(dir, 'state')]);
  rmSync(dir, { recursive: true, force: true });
});

test('ctr run --rm with --runc-binary prints the container output and exit status', () => {
  const out = ok(['run', '--rm', '--runc-binary', PIER_RUNTIME, '--rootfs', rootfs, 'ctr-once', 'sh', '-c', 'echo pid $$; cat /proc/self/cgroup | head -1']);
  assert.match(out, /pid 1/);
  const r = ctr(['run', '--rm', '--runc-binary', PIER_RUNTIME, '--rootfs', rootfs, 'ctr-fail', 'sh', '-c', 'exit 3']);
  assert.equal(r.status, 3);
});

test('ctr task exec, ps, pause/resume and kill on a long-running container', async () => {
  ok(['run', '-d', '--runc-binary', PIER_RUNTIME, '--rootfs', rootfs, 'ctr-life', 'sleep', '600']);
  assert.match(ok(['task', 'exec', '--exec-id', 'e1', 'ctr-life', 'sh', '-c', 'echo exec says $(hostname)']), /exec says/);
  const ps = ok(['task', 'ps', 'ctr-life']);
  assert.match(ps, /^PID/m);
  ok(['task', 'pause', 'ctr-life']);
  assert.match(ok(['task', 'ls']), /ctr-life\s+\d+\s+PAUSED/);
  ok(['task', 'resume', 'ctr-life']);
  assert.match(ok(['task', 'ls']), /ctr-life\s+\d+\s+RUNNING/);
  ok(['task', 'kill', '--signal', 'SIGKILL', 'ctr-life']);
  for (let i = 0; i < 100 && !/STOPPED/.test(ok(['task', 'ls'])); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(ok(['task', 'ls']), /ctr-life\s+\d+\s+STOPPED/);
  ok(['task', 'delete', 'ctr-life']);
  ok(['container', 'delete', 'ctr-life']);
});
