import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { openCgroup, type Cgroup } from '../../src/runtime/cgroups/index.ts';
import { PierError } from '../../src/common/errors.ts';
import { FakeKernel, selfCgroup, v1Machine } from '../helpers/cgroup-fake.ts';

function open(k: FakeKernel, cgroupsPath?: string, own = '/'): Cgroup {
  return openCgroup({ id: 'c1', cgroupsPath, mountinfo: k.mountinfo(), selfCgroup: selfCgroup(k, own), fs: k.fs });
}

function withKernel(fn: (k: FakeKernel) => void, make = v1Machine): () => void {
  return () => {
    const k = make();
    try {
      fn(k);
    } finally {
      k.cleanup();
    }
  };
}

test('v1 create writes exactly the expected files in order', withKernel((k) => {
  const cg = open(k);
  assert.equal(cg.mode, 'v1');
  cg.create({
    memory: { limit: 100 << 20, reservation: 50 << 20, swap: 200 << 20, swappiness: 10, disableOOMKiller: true },
    cpu: { shares: 512, quota: 50000, period: 100000, cpus: '1', mems: '0' },
    pids: { limit: 64 },
    blockIO: { weight: 300, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }] },
    hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
    network: { classID: 0x100001, priorities: [{ name: 'eth0', priority: 5 }] },
    devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }, { allow: true, type: 'c', major: 136 }],
  });
  assert.deepEqual(k.log(), [
    // inheritance of the empty cpuset first
    'cpuset/c1/cpuset.cpus=0-1',
    'cpuset/c1/cpuset.mems=0',
    'cpuset/c1/cpuset.cpus=1',
    'cpuset/c1/cpuset.mems=0',
    // fresh cgroup: memsw is unlimited, so the memory limit goes first
    'memory/c1/memory.limit_in_bytes=104857600',
    'memory/c1/memory.memsw.limit_in_bytes=209715200',
    'memory/c1/memory.soft_limit_in_bytes=52428800',
    'memory/c1/memory.swappiness=10',
    'memory/c1/memory.oom_control=1',
    'cpu,cpuacct/c1/cpu.shares=512',
    'cpu,cpuacct/c1/cpu.cfs_period_us=100000',
    'cpu,cpuacct/c1/cpu.cfs_quota_us=50000',
    'pids/c1/pids.max=64',
    'blkio/c1/blkio.weight=300',
    'blkio/c1/blkio.throttle.read_bps_device=8:0 1048576',
    'hugetlb/c1/hugetlb.2MB.limit_in_bytes=4194304',
    'net_cls,net_prio/c1/net_cls.classid=1048577',
    'net_cls,net_prio/c1/net_prio.ifpriomap=eth0 5',
    'devices/c1/devices.deny=a',
    'devices/c1/devices.deny=a *:* rwm',
    'devices/c1/devices.allow=c 1:3 rw',
    'devices/c1/devices.allow=c 136:* rwm',
  ]);
  for (const f of cg.procsFiles()) assert.ok(existsSync(f), f);
}));

test('memory limit and memsw are ordered so the kernel accepts both directions', withKernel((k) => {
  const cg = open(k);
  cg.create({ memory: { limit: 100, swap: 200 } });
  k.writes.length = 0;
  cg.update({ memory: { limit: 300, swap: 400 } }); // raising: memsw first
  assert.deepEqual(k.log(), ['memory/c1/memory.memsw.limit_in_bytes=400', 'memory/c1/memory.limit_in_bytes=300']);
  k.writes.length = 0;
  cg.update({ memory: { limit: 50, swap: 60 } }); // lowering: limit first
  assert.deepEqual(k.log(), ['memory/c1/memory.limit_in_bytes=50', 'memory/c1/memory.memsw.limit_in_bytes=60']);
  k.writes.length = 0;
  cg.update({ memory: { limit: -1, swap: -1 } }); // unlimited both
  assert.deepEqual(k.log(), ['memory/c1/memory.memsw.limit_in_bytes=-1', 'memory/c1/memory.limit_in_bytes=-1']);
  assert.throws(() => cg.update({ memory: { limit: 500, swap: 100 } }), /cannot set memory swap 100: memory\+swap limit must be at least the memory limit 500/);
}));

test('swap without memsw (no swap accounting) and kernel memory without kmem files are ignored', withKernel((k) => {
  const cg = open(k);
  cg.create({ memory: { limit: 1000, swap: 2000, kernel: 4096, kernelTCP: 4096 } });
  assert.deepEqual(k.log(), ['memory/c1/memory.limit_in_bytes=1000']);
}, () => new FakeKernel([{ at: 'memory', type: 'cgroup', controllers: ['memory'], omit: ['memory.memsw.limit_in_bytes', 'memory.kmem.limit_in_bytes'] }])));

test('kernel memory is written where the file exists', withKernel((k) => {
  open(k).create({ memory: { kernel: 4096 } });
  assert.deepEqual(k.log().filter((l) => l.startsWith('memory/')), ['memory/c1/memory.kmem.limit_in_bytes=4096']);
}));

test('cpuset: every empty level below the mount point inherits cpus/mems; set values are kept', withKernel((k) => {
  mkdirSync(k.path('cpuset/pre'));
  k.set('cpuset/pre/cpuset.cpus', '1');
  k.set('cpuset/pre/cpuset.mems', '');
  k.set('cpuset/pre/cgroup.procs', '');
  const cg = open(k, '/pre/mid/c1');
  cg.create();
  assert.deepEqual(k.log().filter((l) => l.startsWith('cpuset/')), [
    'cpuset/pre/cpuset.mems=0',
    'cpuset/pre/mid/cpuset.cpus=1',
    'cpuset/pre/mid/cpuset.mems=0',
    'cpuset/pre/mid/c1/cpuset.cpus=1',
    'cpuset/pre/mid/c1/cpuset.mems=0',
  ]);
  assert.equal(k.read('cpuset/pre/mid/c1/cpuset.cpus'), '1');
}));

test('rollback: a failing write removes the directories this create made, not pre-existing ones', withKernel((k) => {
  mkdirSync(k.path('memory/parent'));
  k.set('memory/parent/cgroup.procs', '');
  k.failWrite = (file, data) => (file.endsWith('pids.max') && data === '10' ? 'EINVAL' : undefined);
  const cg = open(k, '/parent/c1');
  assert.throws(
    () => cg.create({ memory: { limit: 1000 }, pids: { limit: 10 } }),
    (e: unknown) => e instanceof PierError && e.message === `cannot set pids limit 10: write ${k.path('pids/parent/c1/pids.max')}: invalid argument`,
  );
  assert.ok(existsSync(k.path('memory/parent')), 'pre-existing parent kept');
  assert.ok(!existsSync(k.path('memory/parent/c1')));
  for (const m of k.mounts) assert.ok(!existsSync(k.path(`${m.at}/parent/c1`)), m.at);
  assert.ok(!existsSync(k.path('pids/parent')), 'parent created by this call removed');
}));

test('a resource for an unmounted controller fails naming it; zero/absent values pass', withKernel((k) => {
  const cg = open(k);
  assert.throws(() => cg.create({ network: { classID: 7 } }), /^PierError: cannot set network classID 7: the net_cls cgroup controller is not mounted$/);
  assert.ok(!existsSync(k.path('memory/c1')));
  assert.throws(() => open(k).create({ rdma: { mlx5_0: { hcaHandles: 2 } } }), /cannot set rdma limit for mlx5_0: the rdma cgroup controller is not mounted/);
  open(k).create({ network: { classID: 0, priorities: [] }, hugepageLimits: [], rdma: {} });
  assert.ok(existsSync(k.path('memory/c1')));
}, () => new FakeKernel([
  { at: 'memory', type: 'cgroup', controllers: ['memory'] },
  { at: 'cpu', type: 'cgroup', controllers: ['cpu'] },
])));

test('cpu: clamped shares are reported; period retried after quota on EINVAL; realtime and burst', withKernel((k) => {
  const cg = open(k);
  cg.create();
  assert.throws(() => cg.update({ cpu: { shares: 500000 } }), /cannot set cpu shares 500000: the kernel set 262144 instead/);
  k.writes.length = 0;
  let refused = true;
  k.failWrite = (file) => (file.endsWith('cfs_period_us') && refused ? ((refused = false), 'EINVAL') : undefined);
  cg.update({ cpu: { period: 10000, quota: 5000, burst: 1000, realtimePeriod: 500000, realtimeRuntime: 1000 } });
  assert.deepEqual(k.log(), [
    'cpu,cpuacct/c1/cpu.cfs_quota_us=5000',
    'cpu,cpuacct/c1/cpu.cfs_period_us=10000',
    'cpu,cpuacct/c1/cpu.cfs_burst_us=1000',
    'cpu,cpuacct/c1/cpu.rt_period_us=500000',
    'cpu,cpuacct/c1/cpu.rt_runtime_us=1000',
  ]);
  k.failWrite = (file) => (file.endsWith('cfs_quota_us') ? 'EINVAL' : undefined);
  assert.throws(() => cg.update({ cpu: { quota: 1 } }), /^PierError: cannot set cpu quota 1: write .*cpu.cfs_quota_us: invalid argument$/);
}));

test('pids 0 and -1 mean unlimited; devices rules validate', withKernel((k) => {
  const cg = open(k);
  cg.create({ pids: { limit: 0 } });
  cg.update({ pids: { limit: -1 } });
  assert.deepEqual(k.log(), ['cpuset/c1/cpuset.cpus=0-1', 'cpuset/c1/cpuset.mems=0', 'pids/c1/pids.max=max', 'pids/c1/pids.max=max']);
  assert.throws(() => cg.update({ devices: [{ allow: true, type: 'x' }] }), /cannot set device rule type "x"/);
  assert.throws(() => cg.update({ devices: [{ allow: true, access: 'rwx' }] }), /cannot set device rule access "rwx"/);
}));

test('hugetlb: unknown page sizes fail clearly', withKernel((k) => {
  const cg = open(k);
  cg.create();
  assert.throws(() => cg.update({ hugepageLimits: [{ pageSize: '64KB', limit: 1 }] }), /cannot set hugepage limit 64KB 1: hugetlb.64KB.limit_in_bytes does not exist/);
  assert.throws(() => cg.update({ hugepageLimits: [{ pageSize: '2M', limit: 1 }] }), /expected a size like 2MB/);
}));

test('freeze/thaw/frozen via freezer.state', withKernel((k) => {
  const cg = open(k);
  cg.create();
  assert.equal(cg.frozen(), false);
  cg.freeze();
  assert.equal(k.read('freezer/c1/freezer.state'), 'FROZEN');
  assert.equal(cg.frozen(), true);
  cg.thaw();
  assert.equal(cg.frozen(), false);
}));

test('freeze that never reaches FROZEN thaws and fails', withKernel((k) => {
  const cg = open(k);
  cg.create();
  // The fake echoes whatever is written; make it report FREEZING instead, as a stuck freeze does.
  const write = k.fs.write;
  k.fs.write = (f, d) => {
    write(f, d);
    if (f.endsWith('freezer.state') && d === 'FROZEN') k.set('freezer/c1/freezer.state', 'FREEZING');
  };
  const t0 = Date.now();
  assert.throws(() => cg.freeze(), /cannot freeze cgroup .*freezer.state is still FREEZING/);
  assert.ok(Date.now() - t0 >= 1900);
  assert.equal(k.read('freezer/c1/freezer.state'), 'THAWED');
}));

test('pids() walks descendants in every hierarchy; stats read v1 files', withKernel((k) => {
  const cg = open(k);
  cg.create();
  mkdirSync(k.path('memory/c1/sub'));
  k.set('memory/c1/sub/cgroup.procs', '303\n');
  k.set('memory/c1/cgroup.procs', '101\n202\n');
  k.set('pids/c1/cgroup.procs', '101\n');
  assert.deepEqual(cg.pids(), [101, 202, 303]);
  k.set('memory/c1/memory.usage_in_bytes', '4096');
  k.set('memory/c1/memory.max_usage_in_bytes', '8192');
  k.set('memory/c1/memory.limit_in_bytes', '1048576');
  k.set('memory/c1/memory.failcnt', '3');
  k.set('memory/c1/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
  k.set('pids/c1/pids.current', '3');
  k.set('pids/c1/pids.max', '64');
  k.set('cpu,cpuacct/c1/cpuacct.usage', '123456789');
  k.set('cpu,cpuacct/c1/cpu.stat', 'nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n');
  assert.deepEqual(cg.stats(), {
    memory: { usage: 4096, maxUsage: 8192, limit: 1048576, failcnt: 3, oomEvents: 2, oomKills: 2 },
    cpu: { usageNs: 123456789, throttledPeriods: 4, throttledTimeNs: 5000 },
    pids: { current: 3, limit: 64 },
  });
  // unlimited reads as no limit
  k.set('memory/c1/memory.limit_in_bytes', '9223372036854771712');
  k.set('pids/c1/pids.max', 'max');
  assert.equal(cg.stats().memory!.limit, undefined);
  assert.equal(cg.stats().pids!.limit, undefined);
}));

test('destroy removes nested children bottom-up everywhere and is idempotent', withKernel((k) => {
  const cg = open(k, '/a/c1');
  cg.create();
  mkdirSync(k.path('memory/a/c1/child'));
  k.set('memory/a/c1/child/cgroup.procs', '');
  cg.destroy();
  for (const m of k.mounts) {
    assert.ok(!existsSync(k.path(`${m.at}/a/c1`)), m.at);
    assert.ok(existsSync(k.path(`${m.at}/a`)), 'shared parent stays');
  }
  cg.destroy();
}));

test('destroy reports a cgroup that stays busy', withKernel((k) => {
  const cg = open(k);
  cg.create();
  k.fs.rmdir = (d) => {
    throw Object.assign(new Error('busy'), { code: d.includes('/memory/') ? 'EBUSY' : 'EPERM' });
  };
  assert.throws(() => cg.destroy(), /cannot remove cgroup .*: operation not permitted/);
}));
