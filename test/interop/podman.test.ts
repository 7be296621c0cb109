/**
 * Debian's podman 4.3 drives pier-runtime unmodified: `podman --runtime <abs path>` with the cgroupfs
 * manager (no systemd here) and conmon in between. containers.conf lists pier-runtime among the runtimes
 * that take `--log-format=json --log FILE`, so that path is exercised too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxRootfs } from '../helpers/rootfs.ts';
import { PIER_RUNTIME } from '../helpers/pier.ts';

const dir = mkdtempSync('/var/tmp/pier-podman-');
const conf = join(dir, 'containers.conf');
const IMAGE = 'localhost/pier-busybox:test';
const base = ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'vfs',
  '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', PIER_RUNTIME];
const env = { ...process.env, CONTAINERS_CONF: conf };

function podman(args: string[], opts: { timeout?: number } = {}) {
  return spawnSync('podman', [...base, ...args], { encoding: 'utf8', env, timeout: opts.timeout ?? 60_000 });
}
function ok(args: string[]): string {
  const r = podman(args);
  assert.equal(r.status, 0, `podman ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(() => {
  writeFileSync(conf, [
    '[containers]',
    'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
    'netns = "none"',
    '[engine]',
    'runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "pier-runtime"]',
    '',
  ].join('\n'));
  const tar = join(dir, 'rootfs.tar');
  execFileSync('tar', ['-C', busyboxRootfs(), '-cf', tar, '.']);
  ok(['import', tar, IMAGE]);
});

after(() => {
  podman(['rm', '--all', '--force', '--time', '0']);
  spawnSync('podman', [...base, 'system', 'reset', '--force'], { env });
  spawnSync('umount', ['-R', join(dir, 'root')]);
  rmSync(dir, { recursive: true, force: true });
});

test('podman run: output, exit status, isolation', () => {
  const out = ok(['run', '--rm', '--hostname', 'podpier', IMAGE, 'sh', '-c', 'echo hello from $$; hostname']);
  assert.match(out, /hello from 1\npodpier/);
  const r = podman(['run', '--rm', IMAGE, 'sh', '-c', 'exit 7']);
  assert.equal(r.status, 7);
});

test('podman run -t gets a terminal from the console socket', () => {
  const out = ok(['run', '--rm', '-t', IMAGE, 'sh', '-c', 'tty; stty size']);
  assert.match(out, /\/dev\/pts\/\d+/);
});

test('podman reports a missing executable as not found', () => {
  const r = podman(['run', '--rm', IMAGE, '/no/such/binary']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /no such file or directory|not found/i);
});

test('podman run -d, exec, pause/unpause, stop', () => {
  const id = ok(['run', '-d', '--name', 'pier-life', IMAGE, 'sleep', '600']).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(ok(['exec', 'pier-life', 'sh', '-c', 'echo in $(hostname) as $(id -u)']).trim().startsWith('in '), true);
  assert.match(ok(['exec', 'pier-life', 'ps']), /sleep 600/);
  ok(['pause', 'pier-life']);
  assert.equal(ok(['inspect', '--format', '{{.State.Status}}', 'pier-life']).trim(), 'paused');
  ok(['unpause', 'pier-life']);
  assert.equal(ok(['inspect', '--format', '{{.State.Status}}', 'pier-life']).trim(), 'running');
  ok(['stop', '--time', '2', 'pier-life']);
  assert.equal(ok(['inspect', '--format', '{{.State.Status}}', 'pier-life']).trim(), 'exited');
  ok(['rm', 'pier-life']);
});
