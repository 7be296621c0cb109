import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { openCgroup, type Cgroup } from '../../src/runtime/cgroups/index.ts';
import { FakeKernel, hybridMachine, selfCgroup } from '../helpers/cgroup-fake.ts';

function open(k: FakeKernel, own: Record<string, string> = {}): Cgroup {
  return openCgroup({ id: 'c1', mountinfo: k.mountinfo(), selfCgroup: selfCgroup(k, '/', own), fs: k.fs });
}

function withKernel(fn: (k: FakeKernel) => void): () => void {
  return () => {
    const k = hybridMachine();
    try {
      fn(k);
    } finally {
      k.cleanup();
    }
  };
}

test('hybrid: v1 controllers on their mounts, hugetlb in the unified tree (enabled on demand)', withKernel((k) => {
  const cg = open(k, { memory: '/process_api/x' });
  assert.equal(cg.mode, 'hybrid');
  cg.create({
    memory: { limit: 4096 },
    cpu: { shares: 100 },
    hugepageLimits: [{ pageSize: '2MB', limit: 2097152 }],
    unified: { 'hugetlb.1GB.max': '0' },
  });
  assert.deepEqual(k.log(), [
    'cpuset/c1/cpuset.cpus=0-1',
    'cpuset/c1/cpuset.mems=0',
    'memory/process_api/x/c1/memory.limit_in_bytes=4096',
    'cpu/c1/cpu.shares=100',
    'unified/cgroup.subtree_control=+hugetlb',
    'unified/c1/hugetlb.2MB.max=2097152',
    'unified/c1/hugetlb.1GB.max=0',
  ]);
  assert.equal(cg.procsFiles().length, 10);
  assert.ok(cg.procsFiles().includes(k.path('unified/c1/cgroup.procs')));
  assert.ok(cg.procsFiles().includes(k.path('systemd/c1/cgroup.procs')));
  assert.deepEqual(cg.mountSources().map((m) => m.name), ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd', 'unified']);
}));

test('hybrid: no subtree_control writes when nothing needs a unified controller', withKernel((k) => {
  open(k).create({ pids: { limit: 5 } });
  assert.deepEqual(k.log().filter((l) => l.startsWith('unified/')), []);
  assert.ok(existsSync(k.path('unified/c1')));
}));

test('hybrid: unified keys for v1-bound controllers fail and roll back everything', withKernel((k) => {
  const cg = open(k);
  assert.throws(
    () => cg.create({ unified: { 'memory.high': '1000' } }),
    /^PierError: cannot set unified memory.high "1000": the memory controller is not available in .*unified \(hybrid mode: it is bound to a v1 hierarchy\)$/,
  );
  for (const m of k.mounts) assert.ok(!existsSync(k.path(`${m.at}/c1`)), m.at);
}));

test('hybrid: unmounted v1 controller (net_cls) is an error; devices go to the v1 devices cgroup', withKernel((k) => {
  const cg = open(k);
  assert.throws(() => cg.create({ network: { priorities: [{ name: 'lo', priority: 1 }] } }), /cannot set network priority for lo: the net_prio cgroup controller is not mounted/);
  cg.create({ devices: [{ allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }] });
  assert.deepEqual(k.log().filter((l) => l.startsWith('devices/')), ['devices/c1/devices.deny=a', 'devices/c1/devices.allow=c 5:1 rwm']);
}));

test('hybrid: the v1 freezer is used; cpu stats need cpuacct usage', withKernel((k) => {
  const cg = open(k);
  cg.create();
  cg.freeze();
  assert.equal(k.read('freezer/c1/freezer.state'), 'FROZEN');
  assert.equal(k.read('unified/c1/cgroup.freeze'), '0');
  cg.thaw();
  k.set('cpuacct/c1/cpuacct.usage', '77');
  assert.deepEqual(cg.stats().cpu, { usageNs: 77, throttledPeriods: 0, throttledTimeNs: 0 });
  cg.destroy();
  for (const m of k.mounts) assert.ok(!existsSync(k.path(`${m.at}/c1`)), m.at);
}));
