import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupFromRecord, detectMode, openCgroup } from '../../src/runtime/cgroups/index.ts';
import { parseCgroupMounts } from '../../src/runtime/cgroups/mountinfo.ts';
import { PierError } from '../../src/common/errors.ts';
import { hybridMachine, selfCgroup, v1Machine, v2Machine } from '../helpers/cgroup-fake.ts';

// The project's machine, verbatim.
const MACHINE = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const MACHINE_SELF = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/1cf2
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

test('mountinfo parsing: controllers from super options, mount flags dropped, duplicates ignored', () => {
  const extra = MACHINE + '50 31 0:32 / /mnt/again rw - cgroup cgroup rw,memory\n' +
    '51 31 0:40 / /sys/fs/cgroup/cpu\\040x rw - cgroup cgroup rw,nosuid,cpu_v2_mode,xattr,release_agent=/x,net_cls,net_prio\n';
  const m = parseCgroupMounts(extra);
  assert.deepEqual(m.map((x) => [x.type, x.mountPoint, x.controllers.join(',')]), [
    ['cgroup', '/sys/fs/cgroup/cpu', 'cpu'],
    ['cgroup', '/sys/fs/cgroup/cpuacct', 'cpuacct'],
    ['cgroup', '/sys/fs/cgroup/cpuset', 'cpuset'],
    ['cgroup', '/sys/fs/cgroup/memory', 'memory'],
    ['cgroup', '/sys/fs/cgroup/devices', 'devices'],
    ['cgroup', '/sys/fs/cgroup/freezer', 'freezer'],
    ['cgroup', '/sys/fs/cgroup/blkio', 'blkio'],
    ['cgroup', '/sys/fs/cgroup/pids', 'pids'],
    ['cgroup', '/sys/fs/cgroup/systemd', 'name=systemd'],
    ['cgroup2', '/sys/fs/cgroup/unified', ''],
    ['cgroup', '/sys/fs/cgroup/cpu x', 'net_cls,net_prio'],
  ]);
});

test('detectMode: hybrid, v1, v2, none', () => {
  assert.equal(detectMode(MACHINE), 'hybrid');
  assert.equal(detectMode(MACHINE.split('\n').filter((l) => !l.includes('cgroup2')).join('\n')), 'v1');
  assert.equal(detectMode('30 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n'), 'v2');
  // A named hierarchy next to cgroup2 has no controllers: still pure v2.
  assert.equal(detectMode('30 20 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n31 20 0:27 / /x rw - cgroup cgroup rw,name=systemd\n'), 'v2');
  assert.throws(() => detectMode('31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n'), PierError);
});

test('this machine: default path goes under the caller\'s own cgroup in each hierarchy', () => {
  const cg = openCgroup({ id: 'c1', mountinfo: MACHINE, selfCgroup: MACHINE_SELF, fs: v1Machine().fs });
  assert.equal(cg.mode, 'hybrid');
  assert.deepEqual(cg.procsFiles(), [
    '/sys/fs/cgroup/cpu/c1/cgroup.procs',
    '/sys/fs/cgroup/cpuacct/c1/cgroup.procs',
    '/sys/fs/cgroup/cpuset/c1/cgroup.procs',
    '/sys/fs/cgroup/memory/process_api/1cf2/c1/cgroup.procs',
    '/sys/fs/cgroup/devices/c1/cgroup.procs',
    '/sys/fs/cgroup/freezer/c1/cgroup.procs',
    '/sys/fs/cgroup/blkio/c1/cgroup.procs',
    '/sys/fs/cgroup/pids/c1/cgroup.procs',
    '/sys/fs/cgroup/systemd/c1/cgroup.procs',
    '/sys/fs/cgroup/unified/c1/cgroup.procs',
  ]);
});

test('absolute cgroupsPath goes under the mount point; relative under the own cgroup; ../ cannot escape', () => {
  const k = hybridMachine();
  try {
    const self = selfCgroup(k, '/', { memory: '/own/sub' });
    const abs = openCgroup({ id: 'x', cgroupsPath: '/pods/p1/c1', mountinfo: k.mountinfo(), selfCgroup: self, fs: k.fs });
    assert.equal(abs.toJSON().hierarchies.find((h) => h.controllers.includes('memory'))!.path, k.path('memory/pods/p1/c1'));
    const rel = openCgroup({ id: 'x', cgroupsPath: 'libpod_parent/libpod-x', mountinfo: k.mountinfo(), selfCgroup: self, fs: k.fs });
    assert.equal(rel.toJSON().hierarchies.find((h) => h.controllers.includes('memory'))!.path, k.path('memory/own/sub/libpod_parent/libpod-x'));
    assert.equal(rel.toJSON().hierarchies.find((h) => h.controllers.includes('pids'))!.path, k.path('pids/libpod_parent/libpod-x'));
    const esc = openCgroup({ id: 'x', cgroupsPath: '../../../etc', mountinfo: k.mountinfo(), selfCgroup: self, fs: k.fs });
    assert.equal(esc.toJSON().hierarchies.find((h) => h.controllers.includes('memory'))!.path, k.path('memory/own/sub/etc'));
    const def = openCgroup({ id: 'abc', cgroupsPath: '', mountinfo: k.mountinfo(), selfCgroup: self, fs: k.fs });
    assert.equal(def.toJSON().hierarchies.find((h) => h.type === 'cgroup2')!.path, k.path('unified/abc'));
    assert.throws(() => openCgroup({ id: 'x', cgroupsPath: '/', mountinfo: k.mountinfo(), selfCgroup: self, fs: k.fs }), /names the base cgroup/);
  } finally {
    k.cleanup();
  }
});

test('systemd slice:prefix:name paths are rejected with a clear error', () => {
  const k = v1Machine();
  try {
    assert.throws(
      () => openCgroup({ id: 'x', cgroupsPath: 'system.slice:docker:abc', mountinfo: k.mountinfo(), selfCgroup: selfCgroup(k), fs: k.fs }),
      (e: unknown) => e instanceof PierError && /systemd cgroup paths need --systemd-cgroup, which pier-runtime does not support without systemd/.test(e.message),
    );
  } finally {
    k.cleanup();
  }
});

test('a bind-mounted sub-tree (mount root ≠ /) strips the mount root from /proc/self/cgroup paths', () => {
  const info = '40 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n';
  const cg = openCgroup({ id: 'c', mountinfo: info, selfCgroup: '4:memory:/docker/abc/inner\n', fs: v1Machine().fs });
  assert.deepEqual(cg.procsFiles(), ['/sys/fs/cgroup/memory/inner/c/cgroup.procs']);
});

test('mountSources: one per hierarchy with names and fresh-mount options', () => {
  const k = v1Machine();
  const h = hybridMachine();
  const v2 = v2Machine();
  try {
    const a = openCgroup({ id: 'c', mountinfo: k.mountinfo(), selfCgroup: selfCgroup(k), fs: k.fs }).mountSources();
    assert.deepEqual(a.map((m) => [m.name, m.fstype, m.options]), [
      ['cpu,cpuacct', 'cgroup', 'cpu,cpuacct'],
      ['cpuset', 'cgroup', 'cpuset'],
      ['memory', 'cgroup', 'memory'],
      ['devices', 'cgroup', 'devices'],
      ['freezer', 'cgroup', 'freezer'],
      ['blkio', 'cgroup', 'blkio'],
      ['pids', 'cgroup', 'pids'],
      ['hugetlb', 'cgroup', 'hugetlb'],
      ['net_cls,net_prio', 'cgroup', 'net_cls,net_prio'],
      ['systemd', 'cgroup', 'none,name=systemd'],
    ]);
    assert.equal(a[2].hostPath, k.path('memory/c'));
    const b = openCgroup({ id: 'c', mountinfo: h.mountinfo(), selfCgroup: selfCgroup(h), fs: h.fs }).mountSources();
    assert.deepEqual(b.at(-1), { name: 'unified', hostPath: h.path('unified/c'), fstype: 'cgroup2', options: '' });
    const c = openCgroup({ id: 'c', mountinfo: v2.mountinfo(), selfCgroup: selfCgroup(v2, '/user.slice'), fs: v2.fs }).mountSources();
    assert.deepEqual(c, [{ name: '', hostPath: v2.path('cg2/user.slice/c'), fstype: 'cgroup2', options: '' }]);
  } finally {
    k.cleanup();
    h.cleanup();
    v2.cleanup();
  }
});

test('record round-trips through JSON; malformed records are rejected', () => {
  const k = hybridMachine();
  try {
    const cg = openCgroup({ id: 'c', mountinfo: k.mountinfo(), selfCgroup: selfCgroup(k), fs: k.fs });
    const rec = JSON.parse(JSON.stringify(cg));
    assert.equal(rec.mode, 'hybrid');
    assert.deepEqual(rec.hierarchies.at(-1), { type: 'cgroup2', controllers: ['hugetlb'], mountPoint: k.path('unified'), path: k.path('unified/c') });
    const back = cgroupFromRecord(rec, k.fs);
    assert.deepEqual(back.toJSON(), cg.toJSON());
    assert.deepEqual(back.procsFiles(), cg.procsFiles());
    assert.throws(() => cgroupFromRecord({ ...rec, mode: 'v3' }), /invalid cgroup record/);
    assert.throws(() => cgroupFromRecord({ mode: 'v1', hierarchies: [{ type: 'cgroup', controllers: [], mountPoint: '/a', path: '/b/c' }] }), /path/);
  } finally {
    k.cleanup();
  }
});
