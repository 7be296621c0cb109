/** Mount option parsing and per-mount ops. */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { mountOps, parseMountOptions, type MountContext } from '../../src/runtime/plan/mounts.ts';
import { deviceList, deviceOps, setsUpDev } from '../../src/runtime/plan/devices.ts';
import { MS } from '../../src/runtime/plan/flags.ts';
import { rootfsMountOps, ROOTFS_MOUNTS_ANNOTATION } from '../../src/runtime/plan/create.ts';
import { baseSpec } from '../helpers/rootfs.ts';
import type { Namespace } from '../../src/runtime/spec.ts';

const ctx = (over: Partial<MountContext> = {}): MountContext => ({ bundle: '/tmp', userns: false, netns: true, cgroupns: true,
  cgroupMounts: [{ name: 'memory', hostPath: '/sys/fs/cgroup/memory/c1', fstype: 'cgroup', options: 'memory' },
    { name: 'cpu,cpuacct', hostPath: '/sys/fs/cgroup/cpu,cpuacct/c1', fstype: 'cgroup', options: 'cpu,cpuacct' }], ...over });

describe('parseMountOptions', () => {
  it('splits flags, clears, propagation and filesystem data', () => {
    const o = parseMountOptions(['ro', 'nosuid', 'rw', 'noexec', 'rslave', 'mode=755', 'size=1m', 'rbind']);
    assert.equal(o.flags, MS.NOSUID | MS.NOEXEC);
    assert.deepEqual(o.propagation, [MS.SLAVE | MS.REC]);
    assert.equal(o.data, 'mode=755,size=1m');
    assert.ok(o.bind && o.recursive);
  });
});

describe('mountOps', () => {
  it('binds then remounts for flags, and applies propagation separately', () => {
    const ops = mountOps({ destination: 'data/', type: 'bind', source: '.', options: ['rbind', 'ro', 'nodev', 'private'] }, ctx());
    assert.deepEqual(ops.map((o) => o.args), [
      ['/tmp', '/data', '', MS.BIND | MS.REC, '', 'dir'],
      ['', '/data', '', MS.BIND | MS.REMOUNT | MS.RDONLY | MS.NODEV, '', ''],
      ['', '/data', '', MS.PRIVATE, '', ''],
    ]);
  });

  it('rejects a bind of a missing source', () => {
    assert.throws(() => mountOps({ destination: '/x', type: 'bind', source: '/no/such/path', options: ['bind'] }, ctx()), /does not exist/);
  });

  it('mounts v1 cgroups under a tmpfs, with real mounts in a cgroup namespace and binds without', () => {
    const m = { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid'] };
    const ns = mountOps(m, ctx());
    assert.deepEqual(ns.map((o) => [o.op, o.args[0], o.args[1], o.args[2], o.args[4]]), [
      ['MOUNT', 'tmpfs', '/sys/fs/cgroup', 'tmpfs', 'mode=755'],
      ['MOUNT', 'cgroup', '/sys/fs/cgroup/memory', 'cgroup', 'memory'],
      ['MOUNT', 'cgroup', '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'cpu,cpuacct'],
      ['SYMLINK', 'cpu,cpuacct', '/sys/fs/cgroup/cpu', undefined, undefined],
      ['SYMLINK', 'cpu,cpuacct', '/sys/fs/cgroup/cpuacct', undefined, undefined],
      ['MOUNT', '', '/sys/fs/cgroup', '', 'mode=755'],
    ]);
    assert.equal(ns[1].args[3], MS.RDONLY | MS.NOSUID);
    assert.equal(ns.at(-1)!.args[3], MS.REMOUNT | MS.RDONLY | MS.NOSUID);
    const hostDirs = ctx({ cgroupns: false, cgroupMounts: [{ name: 'pids', hostPath: '/sys/fs/cgroup/pids', fstype: 'cgroup', options: 'pids' }] });
    const bind = mountOps(m, hostDirs);
    assert.deepEqual(bind[1].args, ['/sys/fs/cgroup/pids', '/sys/fs/cgroup/pids', '', MS.BIND | MS.REC, '', 'dir']);
    assert.deepEqual(bind[2].args, ['', '/sys/fs/cgroup/pids', '', MS.BIND | MS.REMOUNT | MS.RDONLY | MS.NOSUID, '', '']);
  });

  it('binds the host /sys in a user namespace without its own network namespace', () => {
    const ops = mountOps({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['ro'] }, ctx({ userns: true, netns: false }));
    assert.deepEqual(ops[0].args, ['/sys', '/sys', '', MS.BIND | MS.REC, '', 'dir']);
    const own = mountOps({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['ro'] }, ctx({ userns: true }));
    assert.deepEqual(own[0].args, ['sysfs', '/sys', 'sysfs', MS.RDONLY, '', 'dir']);
  });
});

describe('devices', () => {
  it('creates the defaults plus linux.devices, overriding by path', () => {
    const spec = baseSpec();
    spec.linux!.devices = [{ type: 'c', path: '/dev/null', major: 1, minor: 3, fileMode: 0o600 }, { type: 'b', path: 'dev/sda', major: 8, minor: 0 }];
    const list = deviceList(spec);
    assert.equal(list.find((d) => d.path === '/dev/null')!.fileMode, 0o600);
    assert.ok(list.some((d) => d.path === '/dev/sda'));
    const ops = deviceOps(spec, false);
    assert.ok(ops.some((o) => o.op === 'MKNOD' && o.args.join(' ') === '/dev/sda b 8 0 666 0 0'));
    assert.ok(ops.some((o) => o.op === 'SYMLINK' && o.args[0] === 'pts/ptmx' && o.args[1] === '/dev/ptmx'));
  });

  it('leaves a bind-mounted /dev alone', () => {
    const spec = baseSpec();
    spec.mounts = [{ destination: '/dev', type: 'bind', source: '/dev', options: ['rbind'] }];
    assert.equal(setsUpDev(spec), false);
    assert.deepEqual(deviceOps(spec, false), []);
  });
});

describe('rootfs mounts as data (io.pier.rootfs.mounts)', () => {
  const withMounts = (value: unknown, ns: Namespace[] = [{ type: 'mount' }]) => {
    const spec = baseSpec();
    spec.linux = { ...spec.linux, namespaces: ns };
    spec.annotations = { [ROOTFS_MOUNTS_ANNOTATION]: typeof value === 'string' ? value : JSON.stringify(value) };
    return spec;
  };
  it('makes each mount onto the rootfs in order: overlay with its data, bind then a remount for flags', () => {
    const ops = rootfsMountOps(withMounts([
      { type: 'overlay', source: 'overlay', options: ['lowerdir=/l1:/l2', 'upperdir=/u', 'workdir=/w'] },
      { type: 'bind', source: '/ro-tree', options: ['bind', 'ro'] },
    ]), '/b/rootfs');
    assert.deepEqual(ops.map((o) => [o.op, ...o.args]), [
      ['MOUNT', 'overlay', '/b/rootfs', 'overlay', 0, 'lowerdir=/l1:/l2,upperdir=/u,workdir=/w', ''],
      ['MOUNT', '/ro-tree', '/b/rootfs', '', MS.BIND, '', ''],
      ['MOUNT', '', '/b/rootfs', '', MS.BIND | MS.REMOUNT | MS.RDONLY, '', ''],
    ]);
  });
  it('comes first in the container mount namespace, after / is made a slave', () => {
    assert.equal(rootfsMountOps(baseSpec(), '/r').length, 0, 'nothing without the annotation');
  });
  it('refuses a malformed value with one line naming the annotation', () => {
    const cases: [unknown, RegExp][] = [
      ['{', /not JSON/],
      [[], /array of 1 to 16/],
      [[{ type: 'tmpfs', source: 'x', options: [] }], /type must be "overlay" or "bind"/],
      [[{ type: 'bind', source: 'rel', options: [] }], /source must be an absolute path/],
      [[{ type: 'overlay', source: 'overlay', options: 'lowerdir=/a' }], /options must be an array of strings/],
      [[{ type: 'overlay', source: 'overlay', options: ['idmap'] }], /idmap is not supported/],
    ];
    for (const [v, re] of cases) assert.throws(() => rootfsMountOps(withMounts(v), '/r'), (e: Error) => re.test(e.message) && e.message.startsWith('annotation io.pier.rootfs.mounts'), String(re));
    const ok = [{ type: 'overlay', source: 'overlay', options: ['lowerdir=/a:/b'] }];
    assert.throws(() => rootfsMountOps(withMounts(ok, []), '/r'), /needs a new mount namespace/);
    assert.throws(() => rootfsMountOps(withMounts(ok, [{ type: 'mount', path: '/proc/1/ns/mnt' }]), '/r'), /not a joined one/);
  });
});
