/**
 * Bad input through the CLI: one clear error line, a non-zero exit, and nothing left behind — no state
 * dir, cgroup, mount or process — however far create got before it failed.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseSpec, makeBundle } from '../helpers/rootfs.ts';
import { cgroupDirsMatching, pr, prOk } from '../helpers/pier.ts';
import type { Spec } from '../../src/runtime/spec.ts';

const root = mkdtempSync(join(tmpdir(), 'pier-bad-root-'));
const cleanup: string[] = [root];
after(() => {
  for (const id of prOk(root, ['list', '--quiet']).split('\n').filter(Boolean)) pr(root, ['delete', '--force', id]);
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

const mountCount = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;

function bundleWith(f: (s: Spec) => void, args = ['sleep', '100']): string {
  const s = baseSpec(args);
  f(s);
  const b = makeBundle(s);
  cleanup.push(b);
  return b;
}

/** Expect a failed create: exit 1, one stderr line matching re, and no trace of the container. */
function failsCleanly(bundle: string, re: RegExp) {
  const id = `bad-${Math.random().toString(36).slice(2, 8)}`;
  const mounts = mountCount();
  const r = pr(root, ['create', '--bundle', bundle, id]);
  assert.equal(r.status, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one error line, got: ${r.stderr}`);
  assert.match(lines[0], re);
  assert.ok(!readdirSync(root).includes(id), 'state dir left');
  assert.deepEqual(cgroupDirsMatching(new RegExp(`^${id}$`)), [], 'cgroup left');
  assert.equal(mountCount(), mounts, 'mount left');
}

test('a missing rootfs', () => {
  const b = bundleWith(() => undefined);
  const cfg = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
  cfg.root.path = '/nonexistent/rootfs';
  writeFileSync(join(b, 'config.json'), JSON.stringify(cfg));
  failsCleanly(b, /rootfs \/nonexistent\/rootfs does not exist/);
});

test('invalid JSON and invalid fields', () => {
  const b = bundleWith(() => undefined);
  writeFileSync(join(b, 'config.json'), '{"ociVersion": ');
  failsCleanly(b, /config.json: invalid JSON/);
  failsCleanly(bundleWith((s) => { s.process!.args = []; }), /process.args must not be empty/);
  failsCleanly(bundleWith((s) => { s.process!.capabilities!.bounding = ['CAP_BOGUS']; }), /unknown capability "CAP_BOGUS"/);
  failsCleanly(bundleWith((s) => { s.process!.rlimits = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }]; }), /RLIMIT_BOGUS/);
  failsCleanly(bundleWith((s) => { s.linux!.seccomp = { defaultAction: 'SCMP_ACT_WHATEVER' }; }), /SCMP_ACT_WHATEVER/);
  failsCleanly(bundleWith((s) => { s.linux!.resources = { memory: { limit: 1000 } }; }), /memory/);
});

test('failures after the init exists leave nothing either', () => {
  failsCleanly(bundleWith(() => undefined, ['/no/such/binary']), /no such file or directory|not found/i);
  failsCleanly(bundleWith(() => undefined, ['nosuchcommand']), /exec: "nosuchcommand": executable file not found in \$PATH/);
  failsCleanly(bundleWith((s) => { s.mounts!.push({ destination: '/mnt', type: 'nosuchfs', source: 'x' }); }), /mount/);
  failsCleanly(bundleWith((s) => { s.hooks = { prestart: [{ path: '/bin/false' }] }; }), /prestart hook #0 \(\/bin\/false\) failed: exit status 1/);
  failsCleanly(bundleWith((s) => { s.hooks = { createRuntime: [{ path: '/bin/sleep', args: ['sleep', '10'], timeout: 1 }] }; }), /createRuntime hook #0 \(\/bin\/sleep\) timed out after 1s/);
});

test('unknown ids and wrong state transitions', async () => {
  for (const cmd of [['state', 'nope'], ['start', 'nope'], ['kill', 'nope'], ['delete', 'nope'], ['exec', 'nope', 'true'], ['pause', 'nope']]) {
    const r = pr(root, cmd);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /container "nope" does not exist/);
  }
  assert.equal(pr(root, ['delete', '--force', 'nope']).status, 0, 'delete --force of a missing container is not an error');
  const b = bundleWith(() => undefined);
  prOk(root, ['create', '--bundle', b, 'st1']);
  assert.match(pr(root, ['create', '--bundle', b, 'st1']).stderr, /container with id exists: st1/);
  assert.match(pr(root, ['resume', 'st1']).stderr, /not paused/);
  prOk(root, ['start', 'st1']);
  assert.match(pr(root, ['start', 'st1']).stderr, /cannot start a container in the running state/);
  assert.match(pr(root, ['delete', 'st1']).stderr, /cannot delete container st1 that is not stopped: running/);
  prOk(root, ['kill', 'st1', 'KILL']);
  for (let i = 0; i < 100 && JSON.parse(prOk(root, ['state', 'st1'])).status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 10));
  assert.match(pr(root, ['kill', 'st1']).stderr, /container not running/);
  assert.match(pr(root, ['start', 'st1']).stderr, /cannot start a container that has stopped/);
  assert.match(pr(root, ['kill', 'st1', 'NOSIG']).stderr, /invalid signal "NOSIG"/);
  prOk(root, ['delete', 'st1']);
});

test('an unwritable root and bad flags', () => {
  const b = bundleWith(() => undefined);
  const r = pr('/proc/pier-cannot-exist', ['create', '--bundle', b, 'x1']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot create runtime root \/proc\/pier-cannot-exist/);
  assert.match(pr(root, ['create', '--bogus', 'x']).stderr, /create: unknown flag --bogus/);
  assert.match(pr(root, ['nosuchcommand']).stderr, /unknown command "nosuchcommand"/);
  assert.match(pr(root, ['--log-format', 'xml', 'list']).stderr, /--log-format must be text or json/);
});

test('with --log-format json the log holds exactly one JSON error object', () => {
  const log = join(root, 'log.json');
  const r = pr(root, ['--log', log, '--log-format', 'json', 'create', '--bundle', '/nonexistent-bundle', 'j1']);
  assert.equal(r.status, 1);
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(lines.length, 1);
  const obj = JSON.parse(lines[0]);
  assert.equal(obj.level, 'error');
  assert.match(obj.msg, /cannot read bundle config \/nonexistent-bundle\/config.json/);
  assert.ok(!Number.isNaN(Date.parse(obj.time)));
});
