/** The create/exec plan builders: op order and arguments (no root, no helper). */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { buildCreatePlan, ROOTFS_SUID_DEV_ANNOTATION, type CreatePlanInput } from '../../src/runtime/plan/create.ts';
import { buildExecPlan } from '../../src/runtime/plan/exec.ts';
import { CLONE, MS } from '../../src/runtime/plan/flags.ts';
import { encodePlan, type PlanOp } from '../../src/runtime/plan/ops.ts';
import { PierError } from '../../src/common/errors.ts';
import type { Spec } from '../../src/runtime/spec.ts';
import { baseSpec } from '../helpers/rootfs.ts';

const caps = { bounding: 1n << 5n, effective: 1n << 5n, permitted: 1n << 5n, inheritable: 0n, ambient: 0n };
function input(spec: Spec, over: Partial<CreatePlanInput> = {}): CreatePlanInput {
  return { id: 'c1', spec, bundle: '/b', rootfs: '/b/rootfs', cgroupProcs: ['/sys/fs/cgroup/pids/c1/cgroup.procs'],
    cgroupMounts: [{ name: '', hostPath: '/sys/fs/cgroup/c1', fstype: 'cgroup2', options: '' }],
    fifoPath: '/run/pier/c1/exec.fifo', noPivot: false, noNewKeyring: false, preserveFds: 0, capMasks: caps,
    rlimits: [{ resource: 7, soft: 1024n, hard: 1024n }], mode: 'detach', ...over };
}
const names = (ops: PlanOp[]): string[] => ops.map((o) => o.op);
const idx = (ops: PlanOp[], name: string, from = 0): number => {
  const i = ops.findIndex((o, k) => k >= from && o.op === name);
  assert.ok(i >= 0, `${name} missing`);
  return i;
};

describe('buildCreatePlan', () => {
  it('puts parent ops before CLONE with the clone flags of the new namespaces', () => {
    const ops = buildCreatePlan(input(baseSpec()));
    const clone = idx(ops, 'CLONE');
    assert.deepEqual(names(ops.slice(0, clone)), ['FIFO_OPEN', 'CGROUP_PROCS']);
    assert.deepEqual(ops[0].args, ['/run/pier/c1/exec.fifo', 0, 0], 'the parent makes the fifo, owned by container root');
    const want = CLONE.NEWPID | CLONE.NEWNET | CLONE.NEWIPC | CLONE.NEWUTS | CLONE.NEWNS;
    assert.deepEqual(ops[clone].args, [want, 'detach']);
    assert.deepEqual(ops[clone + 1], { op: 'UNSHARE', args: [CLONE.NEWCGROUP] }, 'cgroup ns is unshared by the child, first');
  });

  it('orders rootfs setup, sync, pivot and the process ops like runc', () => {
    const ops = buildCreatePlan(input(baseSpec()));
    const seq = ['SETHOSTNAME', 'KEYRING', 'MOUNT', 'SETROOT', 'MKNOD', 'MASK', 'READONLY', 'SYNC_WAIT',
      'PIVOT_ROOT', 'SETSID', 'CLOSE_FDS', 'RLIMIT', 'CAPS_BOUNDING', 'SETUSER', 'CAPS', 'UMASK', 'CHDIR', 'ENV', 'NO_NEW_PRIVS',
      'RESOLVE_EXEC', 'SYNC_READY', 'FIFO_WAIT', 'EXEC'];
    let at = 0;
    for (const n of seq) at = idx(ops, n, at);
    assert.equal(ops.at(-1)!.op, 'EXEC');
    assert.deepEqual(ops[idx(ops, 'MOUNT')].args, ['', '/', '', MS.SLAVE | MS.REC, '', ''], '/ is made rslave first');
    assert.deepEqual(ops[idx(ops, 'MOUNT') + 1].args, ['/b/rootfs', '/b/rootfs', '', MS.BIND | MS.REC, '', '']);
    const ro = ops[idx(ops, 'PIVOT_ROOT') + 1];
    assert.deepEqual(ro.args, ['', '/', '', MS.BIND | MS.REMOUNT | MS.RDONLY, '', ''], 'readonly root after pivot');
    assert.ok(idx(ops, 'MOUNT', idx(ops, 'SETROOT')) < idx(ops, 'MASK'), '/proc is mounted before masking');
  });

  it('clears nosuid,nodev on the rootfs bind, before SETROOT, only when the annotation asks', () => {
    assert.ok(!names(buildCreatePlan(input(baseSpec()))).includes('REMOUNT_CLEAR'), 'by default the bind keeps the host mount\'s flags, as runc\'s');
    const spec = { ...baseSpec(), annotations: { [ROOTFS_SUID_DEV_ANNOTATION]: 'true' } };
    const ops = buildCreatePlan(input(spec));
    const bind = idx(ops, 'MOUNT') + 1;
    assert.deepEqual(ops[bind].args, ['/b/rootfs', '/b/rootfs', '', MS.BIND | MS.REC, '', '']);
    assert.deepEqual(ops[bind + 1], { op: 'REMOUNT_CLEAR', args: ['/b/rootfs', MS.NOSUID | MS.NODEV] });
    assert.equal(ops[bind + 2].op, 'SETROOT');
    const ro = ops[idx(ops, 'PIVOT_ROOT') + 1];
    assert.deepEqual(ro.args, ['', '/', '', MS.BIND | MS.REMOUNT | MS.RDONLY, '', ''], 'root.readonly still lands after pivot');
    assert.ok(!names(buildCreatePlan(input({ ...spec, annotations: { [ROOTFS_SUID_DEV_ANNOTATION]: 'false' } }))).includes('REMOUNT_CLEAR'));
  });

  it('places seccomp before the caps drop without noNewPrivileges and just before exec with it', () => {
    const seccomp = { flags: 0, program: new Uint8Array(8) };
    const nnp = buildCreatePlan(input(baseSpec(), { seccomp }));
    assert.equal(names(nnp).at(-2), 'SECCOMP');
    const spec = baseSpec();
    spec.process!.noNewPrivileges = false;
    const early = buildCreatePlan(input(spec, { seccomp }));
    assert.ok(idx(early, 'SECCOMP') < idx(early, 'CAPS_BOUNDING'));
    assert.ok(!names(early).includes('NO_NEW_PRIVS'));
  });

  it('joins namespaces by path, user first, and maps ids for a new user namespace', () => {
    const spec = baseSpec();
    spec.linux!.namespaces = [{ type: 'mount' }, { type: 'network', path: '/run/netns/a' }, { type: 'user' }, { type: 'pid', path: '/proc/9/ns/pid' }];
    spec.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 10 }];
    spec.linux!.gidMappings = [{ containerID: 0, hostID: 2000, size: 10 }];
    spec.hostname = undefined;
    // no cgroup namespace: /sys/fs/cgroup becomes a bind of the host dir, which must exist
    const ops = buildCreatePlan(input(spec, { cgroupMounts: [{ name: '', hostPath: '/tmp', fstype: 'cgroup2', options: '' }] }));
    const parent = ops.slice(0, idx(ops, 'CLONE'));
    assert.deepEqual(parent.filter((o) => o.op === 'SETNS').map((o) => o.args), [['net', '/run/netns/a'], ['pid', '/proc/9/ns/pid']]);
    assert.deepEqual(parent.find((o) => o.op === 'UID_MAP')!.args, ['0 1000 10\n']);
    assert.deepEqual(parent.find((o) => o.op === 'GID_MAP')!.args, ['0 2000 10\n']);
    assert.equal(ops[idx(ops, 'CLONE')].args[0], CLONE.NEWNS | CLONE.NEWUSER);
    // in a user namespace devices are bind-mounted from the host
    assert.ok(!names(ops).includes('MKNOD'));
    assert.ok(ops.some((o) => o.op === 'MOUNT' && o.args[0] === '/dev/null' && o.args[3] === MS.BIND && o.args[5] === 'file'));
  });

  it('writes sysctls and oom_score_adj, skips the keyring on request, chroots with noPivot', () => {
    const spec = baseSpec();
    spec.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
    spec.process!.oomScoreAdj = 100;
    const ops = buildCreatePlan(input(spec, { noNewKeyring: true, noPivot: true }));
    assert.ok(ops.some((o) => o.op === 'WRITE' && o.args[0] === '/proc/sys/net/ipv4/ip_forward' && o.args[1] === '1'));
    assert.ok(ops.some((o) => o.op === 'WRITE' && o.args[0] === '/proc/self/oom_score_adj' && o.args[1] === '100'));
    assert.ok(!names(ops).includes('KEYRING'));
    assert.ok(names(ops).includes('CHROOT') && !names(ops).includes('PIVOT_ROOT'));
    assert.ok(idx(ops, 'WRITE') < idx(ops, 'SETROOT'));
  });

  it('connects the console in the parent and sets it up after pivot; relay needs wait mode', () => {
    const spec = baseSpec();
    spec.process!.terminal = true;
    spec.process!.consoleSize = { height: 24, width: 80 };
    const ops = buildCreatePlan(input(spec, { consoleSocket: '/tmp/c.sock' }));
    assert.ok(idx(ops, 'CONSOLE_CONNECT') < idx(ops, 'CLONE'));
    assert.deepEqual(ops[idx(ops, 'CONSOLE_SETUP')].args, ['/dev/ptmx', 24, 80, '/dev/console']);
    assert.ok(idx(ops, 'SETSID') < idx(ops, 'CONSOLE_SETUP') && idx(ops, 'PIVOT_ROOT') < idx(ops, 'CONSOLE_SETUP'));
    assert.throws(() => buildCreatePlan(input(spec, { consoleSocket: '-' })), PierError);
    assert.throws(() => buildCreatePlan(input(spec, { consoleSocket: undefined })), /no console socket/);
  });

  it('runs hooks at their places and keeps preserved fds open', () => {
    const spec = baseSpec();
    spec.hooks = { createContainer: [{ path: '/h1', args: ['h1', 'a'], env: ['X=1'], timeout: 5 }], startContainer: [{ path: '/h2' }] };
    const ops = buildCreatePlan(input(spec, { preserveFds: 2 }));
    const h1 = idx(ops, 'HOOK');
    assert.deepEqual(ops[h1].args, ['/h1', 5, 2, 'h1', 'a', 'X=1']);
    assert.ok(idx(ops, 'SYNC_WAIT') < h1 && h1 < idx(ops, 'PIVOT_ROOT'));
    const h2 = idx(ops, 'HOOK', h1 + 1);
    assert.ok(idx(ops, 'FIFO_WAIT') < h2 && h2 < idx(ops, 'EXEC'));
    assert.deepEqual(ops[idx(ops, 'CLOSE_FDS')].args, [5]);
  });

  it('without a mount namespace mounts nothing and jails with chroot alone', () => {
    const noMnt = baseSpec();
    noMnt.linux!.namespaces = noMnt.linux!.namespaces!.filter((n) => n.type !== 'mount');
    noMnt.root!.readonly = false;
    const ops = buildCreatePlan(input(noMnt));
    assert.deepEqual(ops.filter((o) => ['MOUNT', 'MASK', 'READONLY', 'MKNOD', 'PIVOT_ROOT'].includes(o.op)), []);
    assert.deepEqual(ops[idx(ops, 'CHROOT')].args, ['/b/rootfs', 'jail']);
    assert.ok(idx(ops, 'SYNC_WAIT') < idx(ops, 'CHROOT'));
  });

  it('rejects what it cannot do safely', () => {
    const noMnt = baseSpec();
    noMnt.linux!.namespaces = noMnt.linux!.namespaces!.filter((n) => n.type !== 'mount');
    assert.throws(() => buildCreatePlan(input(noMnt)), /root.readonly needs a mount namespace/);
    const time = baseSpec();
    time.linux!.namespaces!.push({ type: 'time' });
    assert.throws(() => buildCreatePlan(input(time)), /time namespace/);
    const noUts = baseSpec();
    noUts.linux!.namespaces = noUts.linux!.namespaces!.filter((n) => n.type !== 'uts');
    assert.throws(() => buildCreatePlan(input(noUts)), /uts namespace/);
    const copyup = baseSpec();
    copyup.mounts!.push({ destination: '/x', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup'] });
    assert.throws(() => buildCreatePlan(input(copyup)), /tmpcopyup is not supported/);
  });

  it('encodes to the wire format', () => {
    const buf = encodePlan([{ op: 'SETSID', args: [] }, { op: 'CHDIR', args: ['/a'] }]);
    assert.deepEqual([...buf], [14, 0, 0, 0, 44, 0, 0, 0, 37, 0, 1, 0, 2, 0, 0, 0, 0x2f, 0x61]);
  });
});

describe('buildExecPlan', () => {
  it('joins the given namespaces (user first, mnt last) and skips the rootfs', () => {
    const ops = buildExecPlan({ pid: 42, process: baseSpec(['ls']).process!, cgroupProcs: ['/cg/cgroup.procs'], preserveFds: 0,
      nsPaths: [{ type: 'mnt', path: '/proc/42/ns/mnt' }, { type: 'pid', path: '/proc/42/ns/pid' }, { type: 'user', path: '/proc/42/ns/user' }],
      capMasks: caps, rlimits: [], mode: 'wait' });
    assert.deepEqual(names(ops).slice(0, 6), ['CGROUP_PROCS', 'SETNS', 'SETNS', 'SETNS', 'CLONE', 'SETSID']);
    assert.deepEqual(ops.filter((o) => o.op === 'SETNS').map((o) => o.args[0]), ['user', 'pid', 'mnt']);
    assert.deepEqual(ops[4].args, [0, 'wait']);
    for (const n of ['MOUNT', 'PIVOT_ROOT', 'SYNC_WAIT', 'FIFO_WAIT']) assert.ok(!names(ops).includes(n as PlanOp['op']));
    assert.deepEqual(names(ops).slice(-3), ['RESOLVE_EXEC', 'SYNC_READY', 'EXEC']);
  });
});
