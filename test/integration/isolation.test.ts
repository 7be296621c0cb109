/**
 * Real containers through the built pier-runtime CLI, one isolation property per test: each runs a
 * busybox container and checks from inside (and where it matters, from the host) what it can see.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseSpec, makeBundle } from '../helpers/rootfs.ts';
import { pr, prOk } from '../helpers/pier.ts';
import type { Spec } from '../../src/runtime/spec.ts';

const root = mkdtempSync(join(tmpdir(), 'pier-iso-root-'));
const bundles: string[] = [];
let n = 0;

after(() => {
  for (const id of prOk(root, ['list', '--quiet']).split('\n').filter(Boolean)) pr(root, ['delete', '--force', id]);
  for (const b of bundles) rmSync(b, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

function bundle(script: string, f?: (s: Spec) => void): string {
  const s = baseSpec(['sh', '-c', script]);
  f?.(s);
  const b = makeBundle(s);
  bundles.push(b);
  return b;
}

/** Run a script in a fresh container in the foreground; returns status and output. */
function run(script: string, f?: (s: Spec) => void) {
  const r = pr(root, ['run', '--bundle', bundle(script, f), `iso-${++n}`], { timeout: 60_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

test('the container process is PID 1 and sees only its own processes', () => {
  const r = run('echo pid=$$; ps -o pid= | wc -l');
  assert.equal(r.status, 0, r.err);
  const [pid, count] = r.out.trim().split('\n');
  assert.equal(pid, 'pid=1');
  assert.ok(Number(count) <= 3, `saw ${count} processes`);
});

test('own hostname in its own UTS namespace', () => {
  const r = run('hostname', (s) => { s.hostname = 'isolated-host'; });
  assert.equal(r.out.trim(), 'isolated-host');
});

test('own mount table: the rootfs is /, host mounts are absent', () => {
  const r = run('cat /proc/self/mountinfo');
  assert.equal(r.status, 0, r.err);
  const mounts = r.out.trim().split('\n').map((l) => l.split(' ')[4]);
  assert.ok(mounts.includes('/'));
  assert.ok(mounts.includes('/proc') && mounts.includes('/dev') && mounts.includes('/sys'));
  const hostOnly = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m && m.startsWith('/work'));
  for (const m of hostOnly) assert.ok(!mounts.includes(m), `host mount ${m} visible`);
});

test('a new network namespace has only lo', () => {
  const r = run('ls /sys/class/net');
  assert.equal(r.out.trim(), 'lo');
});

test('a non-root process.user runs as that user with its groups', () => {
  const r = run('id; grep CapEff /proc/self/status', (s) => { s.process!.user = { uid: 65534, gid: 65534, additionalGids: [5] }; });
  assert.equal(r.status, 0, r.err);
  assert.match(r.out, /uid=65534\(nobody\) gid=65534\(nobody\) groups=5/);
  assert.match(r.out, /CapEff:\s+0000000000000000/);
});

test('a readonly rootfs refuses writes', () => {
  const r = run('touch /newfile 2>&1; echo rc=$?');
  assert.match(r.out, /Read-only file system/);
  assert.match(r.out, /rc=1/);
});

test('CAP_SYS_ADMIN is absent: CapEff has exactly the spec set and mount fails', () => {
  const r = run('grep CapEff /proc/self/status; mkdir -p /dev/x; mount -t tmpfs none /dev/x 2>&1; echo rc=$?');
  const eff = BigInt('0x' + /CapEff:\s+([0-9a-f]+)/.exec(r.out)![1]);
  // CAP_KILL(5), CAP_NET_BIND_SERVICE(10), CAP_AUDIT_WRITE(29): the base spec's set.
  assert.equal(eff, (1n << 5n) | (1n << 10n) | (1n << 29n));
  assert.equal(eff & (1n << 21n), 0n);
  assert.match(r.out, /rc=[1-9]/);
});

test('a seccomp rule blocks a syscall with its errno', () => {
  const r = run('mkdir /dev/blocked 2>&1; echo rc=$?; ls / > /dev/null && echo other-syscalls-fine', (s) => {
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
  });
  assert.match(r.out, /Operation not permitted/);
  assert.match(r.out, /rc=1/);
  assert.match(r.out, /other-syscalls-fine/);
});

test('without no_new_privs the filter is loaded early and the runtime\'s own later syscalls still work', () => {
  const r = run('echo started; mkdir /dev/blocked 2>&1', (s) => {
    s.process!.noNewPrivileges = false;
    // close_range is what the runtime would use to mark fds close-on-exec after the filter is in place.
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['close_range', 'mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
  });
  assert.equal(r.err, '');
  assert.match(r.out, /started\n.*Operation not permitted/);
});

test('a memory limit kills an allocating process, and the OOM kill is reported', () => {
  const b = bundle('sleep 600', (s) => { s.linux!.resources = { ...s.linux!.resources, memory: { limit: 32 << 20, swap: 32 << 20 } }; });
  const id = `iso-oom-${++n}`;
  prOk(root, ['create', '--bundle', b, id]);
  prOk(root, ['start', id]);
  // dd allocates its whole block size and fills it: 300 MiB cannot fit under 32 MiB.
  const hog = pr(root, ['exec', id, 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=300M', 'count=1']);
  assert.equal(hog.status, 137, `dd was not SIGKILLed: ${hog.status} ${hog.stderr}`);
  const stats = JSON.parse(prOk(root, ['events', '--stats', id]));
  assert.ok(stats.data.memory.oomKills >= 1, JSON.stringify(stats.data.memory));
  assert.equal(stats.data.memory.limit, 32 << 20);
  prOk(root, ['delete', '--force', id]);
});

test('a pids limit stops fork', () => {
  const r = run('cat /sys/fs/cgroup/pids/pids.max; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done 2>&1; echo all-started', (s) => {
    s.linux!.resources = { ...s.linux!.resources, pids: { limit: 5 } };
  });
  assert.match(r.out + r.err, /can't fork|Resource temporarily unavailable/);
  assert.match(r.out, /^5$/m);
  assert.doesNotMatch(r.out, /all-started/);
});

test('a cpu quota is set and throttles a busy loop', () => {
  const r = run('cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; (while :; do :; done) & sleep 1; kill $!; grep nr_throttled /sys/fs/cgroup/cpu/cpu.stat', (s) => {
    s.linux!.resources = { ...s.linux!.resources, cpu: { quota: 10000, period: 100000 } };
  });
  const lines = r.out.trim().split('\n');
  assert.equal(lines[0], '10000');
  assert.equal(lines[1], '100000');
  assert.ok(Number(/nr_throttled (\d+)/.exec(r.out)![1]) > 0, r.out);
});

test('a user namespace maps container root to an unprivileged host uid', () => {
  const b = bundle('sleep 600', (s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
  });
  const id = `iso-userns-${++n}`;
  prOk(root, ['create', '--bundle', b, id]);
  prOk(root, ['start', id]);
  const pid = JSON.parse(prOk(root, ['state', id])).pid;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  assert.match(status, /Uid:\s+200000\s+200000/);
  const inside = prOk(root, ['exec', id, 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
  assert.match(inside, /^0\n\s*0\s+200000\s+65536/);
  prOk(root, ['delete', '--force', id]);
});

test('a mount whose destination leads into /proc through a symlink in the rootfs is refused (CVE-2019-19921 class)', () => {
  const s = baseSpec(['sh', '-c', 'cat /proc/self/status | head -1']);
  const b = makeBundle(s, { writable: true });
  bundles.push(b);
  // What a previous run of the container (or its image) planted: /opt -> /proc.
  symlinkSync('/proc', join(b, 'rootfs', 'opt'));
  const host = mkdtempSync(join(tmpdir(), 'pier-iso-vol-'));
  try {
    const spec = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8')) as Spec;
    spec.mounts = [...(spec.mounts ?? []), { destination: '/opt/sys', type: 'bind', source: host, options: ['rbind', 'rw'] }];
    writeFileSync(join(b, 'config.json'), JSON.stringify(spec));
    const r = pr(root, ['run', '--bundle', b, `iso-${++n}`], { timeout: 60_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /mount destination \/opt\/sys is inside \/proc/);
    // The files lxcfs binds over /proc are still allowed when the spec names them.
    writeFileSync(join(host, 'uptime'), '1.00 1.00\n');
    spec.mounts = [...(spec.mounts ?? []).filter((m) => m.destination !== '/opt/sys'), { destination: '/proc/uptime', type: 'bind', source: join(host, 'uptime'), options: ['bind', 'ro'] }];
    spec.process!.args = ['cat', '/proc/uptime'];
    writeFileSync(join(b, 'config.json'), JSON.stringify(spec));
    const ok = pr(root, ['run', '--bundle', b, `iso-${++n}`], { timeout: 60_000 });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, '1.00 1.00\n');
  } finally {
    rmSync(host, { recursive: true, force: true });
  }
});
