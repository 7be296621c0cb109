import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { openCgroup, sharesToWeight, type Cgroup } from '../../src/runtime/cgroups/index.ts';
import { swapV2 } from '../../src/runtime/cgroups/v2/memory.ts';
import { blkioToIoWeight } from '../../src/runtime/cgroups/v2/io.ts';
import { FakeKernel, selfCgroup, v2Machine } from '../helpers/cgroup-fake.ts';

function open(k: FakeKernel, cgroupsPath?: string, own = '/'): Cgroup {
  return openCgroup({ id: 'c1', cgroupsPath, mountinfo: k.mountinfo(), selfCgroup: selfCgroup(k, own), fs: k.fs });
}

function withKernel(fn: (k: FakeKernel) => void, make: () => FakeKernel = () => v2Machine()): () => void {
  return () => {
    const k = make();
    try {
      fn(k);
    } finally {
      k.cleanup();
    }
  };
}

test('shares → weight uses runc\'s linear conversion', () => {
  assert.equal(sharesToWeight(0), 0);
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 39);
  assert.equal(sharesToWeight(512), 20);
  assert.equal(sharesToWeight(262144), 10000);
  assert.equal(blkioToIoWeight(10), 1);
  assert.equal(blkioToIoWeight(500), 4950);
  assert.equal(blkioToIoWeight(1000), 10000);
});

test('swap is converted from memory+swap to swap alone', () => {
  assert.equal(swapV2(100, 300), '200');
  assert.equal(swapV2(100, 100), '0');
  assert.equal(swapV2(100, -1), 'max');
  assert.equal(swapV2(100, 0), undefined);
  assert.equal(swapV2(undefined, undefined), undefined);
  assert.throws(() => swapV2(undefined, 300), /cannot set memory swap 300: a swap limit needs a memory limit/);
  assert.throws(() => swapV2(-1, 300), /memory is unlimited/);
  assert.throws(() => swapV2(500, 300), /at least the memory limit 500/);
});

test('v2 create enables controllers down the tree and writes the v2 files', withKernel((k) => {
  const cg = open(k, undefined, '/user.slice');
  mkdirSync(k.path('cg2/user.slice'));
  k.set('cg2/user.slice/cgroup.procs', '');
  k.set('cg2/user.slice/cgroup.subtree_control', '');
  k.set('cg2/user.slice/cgroup.controllers', '');
  assert.equal(cg.mode, 'v2');
  cg.create({
    memory: { limit: 1 << 20, swap: 3 << 20, reservation: 1 << 19, kernel: 12345 },
    cpu: { shares: 1024, quota: 20000, period: 100000, burst: 1000, cpus: '0', mems: '0' },
    pids: { limit: 32 },
    blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 100 }], throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 0 }] },
    hugepageLimits: [{ pageSize: '1GB', limit: 0 }],
    devices: [{ allow: false, access: 'rwm' }],
    unified: { 'memory.high': '900000', 'cgroup.max.depth': '3' },
  });
  // each controller is enabled from the mount point down to the container's parent
  const sub = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'].flatMap((c) => [`cg2/cgroup.subtree_control=+${c}`, `cg2/user.slice/cgroup.subtree_control=+${c}`]);
  assert.deepEqual(k.log(), [
    ...sub,
    'cg2/user.slice/c1/cpuset.cpus=0',
    'cg2/user.slice/c1/cpuset.mems=0',
    'cg2/user.slice/c1/memory.max=1048576',
    'cg2/user.slice/c1/memory.swap.max=2097152',
    'cg2/user.slice/c1/memory.low=524288',
    'cg2/user.slice/c1/cpu.weight=39',
    'cg2/user.slice/c1/cpu.max=20000 100000',
    'cg2/user.slice/c1/cpu.max.burst=1000',
    'cg2/user.slice/c1/pids.max=32',
    'cg2/user.slice/c1/io.weight=default 4950',
    'cg2/user.slice/c1/io.weight=8:0 910',
    'cg2/user.slice/c1/io.max=8:0 wiops=max',
    'cg2/user.slice/c1/hugetlb.1GB.max=0',
    'cg2/user.slice/c1/memory.high=900000',
    'cg2/user.slice/c1/cgroup.max.depth=3',
  ]);
  assert.deepEqual(cg.procsFiles(), [k.path('cg2/user.slice/c1/cgroup.procs')]);
}));

test('v2 cpu.max: a lone period keeps the quota, -1 quota is max; realtime is refused', withKernel((k) => {
  const cg = open(k);
  cg.create({ cpu: { quota: 30000 } });
  assert.equal(k.read('cg2/c1/cpu.max'), '30000');
  k.set('cg2/c1/cpu.max', '30000 100000');
  cg.update({ cpu: { period: 50000 } });
  assert.equal(k.read('cg2/c1/cpu.max'), '30000 50000');
  cg.update({ cpu: { quota: -1 } });
  assert.equal(k.read('cg2/c1/cpu.max'), 'max');
  assert.throws(() => cg.update({ cpu: { realtimeRuntime: 100 } }), /cgroup v2 has no realtime CPU controls/);
  assert.throws(() => cg.update({ memory: { swappiness: 10 } }), /cannot set memory swappiness 10: cgroup v2 has no per-cgroup swappiness/);
  assert.throws(() => cg.update({ memory: { disableOOMKiller: true } }), /cannot disable the OOM killer/);
  assert.throws(() => cg.update({ network: { classID: 1 } }), /cannot set network classID 1: the net_cls cgroup controller is not mounted/);
}));

test('v2 checkBeforeUpdate refuses a limit under current usage', withKernel((k) => {
  const cg = open(k);
  cg.create();
  k.set('cg2/c1/memory.current', '5000');
  assert.throws(() => cg.update({ memory: { limit: 4000, checkBeforeUpdate: true } }), /current usage 5000 is above it/);
  cg.update({ memory: { limit: 4000 } });
  assert.equal(k.read('cg2/c1/memory.max'), '4000');
}));

test('v2 unified keys for a controller the hierarchy lacks fail; bad keys fail', withKernel((k) => {
  const cg = open(k);
  cg.create();
  assert.throws(() => cg.update({ unified: { 'io.max': '8:0 rbps=1' } }), /cannot set unified io.max "8:0 rbps=1": the io controller is not available/);
  assert.throws(() => cg.update({ unified: { '../x': '1' } }), /not a cgroup v2 control file name/);
  assert.throws(() => cg.update({ unified: { 'memory.nosuch': '1' } }), /cannot set unified memory.nosuch "1": write .*: no such file or directory/);
}, () => v2Machine(['memory', 'pids'])));

test('v2 freeze waits for cgroup.events; stats from memory.events and cpu.stat', withKernel((k) => {
  const cg = open(k);
  cg.create();
  cg.freeze();
  assert.equal(k.read('cg2/c1/cgroup.freeze'), '1');
  assert.equal(cg.frozen(), true);
  cg.thaw();
  assert.equal(cg.frozen(), false);
  k.set('cg2/c1/memory.current', '1000');
  k.set('cg2/c1/memory.peak', '2000');
  k.set('cg2/c1/memory.max', '4096');
  k.set('cg2/c1/memory.events', 'low 0\nhigh 1\nmax 7\noom 2\noom_kill 1\n');
  k.set('cg2/c1/pids.current', '4');
  k.set('cg2/c1/cpu.stat', 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 2\nthrottled_usec 30\n');
  assert.deepEqual(cg.stats(), {
    memory: { usage: 1000, maxUsage: 2000, limit: 4096, failcnt: 7, oomEvents: 2, oomKills: 1 },
    cpu: { usageNs: 1500000, throttledPeriods: 2, throttledTimeNs: 30000 },
    pids: { current: 4, limit: undefined },
  });
}));

test('v2 freeze that never reports frozen fails and unfreezes', withKernel((k) => {
  const cg = open(k);
  cg.create();
  const write = k.fs.write;
  k.fs.write = (f, d) => {
    write(f, d);
    if (f.endsWith('cgroup.freeze')) k.set('cg2/c1/cgroup.events', 'populated 1\nfrozen 0\n');
  };
  assert.throws(() => cg.freeze(), /did not report frozen/);
  assert.equal(k.read('cg2/c1/cgroup.freeze'), '0');
}));

test('v2 destroy removes the tree; rollback on failure', withKernel((k) => {
  const cg = open(k, '/a/b');
  k.failWrite = (f) => (f.endsWith('memory.max') ? 'EINVAL' : undefined);
  assert.throws(() => cg.create({ memory: { limit: 10 } }), /^PierError: cannot set memory limit 10: write .*memory.max: invalid argument$/);
  assert.ok(!existsSync(k.path('cg2/a')));
  k.failWrite = undefined;
  cg.create();
  mkdirSync(k.path('cg2/a/b/leaf'));
  k.set('cg2/a/b/leaf/cgroup.procs', '');
  cg.destroy();
  assert.ok(!existsSync(k.path('cg2/a/b')));
  assert.ok(existsSync(k.path('cg2/a')));
}));
