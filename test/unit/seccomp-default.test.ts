import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSeccomp, defaultSeccompProfile, DEFAULT_ALLOWED_SYSCALLS } from '../../src/runtime/seccomp/index.ts';
import { SYSCALLS_X86_64 as NR } from '../../src/runtime/seccomp/table-x86_64.ts';
import { SYSCALLS_I386 } from '../../src/runtime/seccomp/table-i386.ts';
import { SYSCALLS_X32 } from '../../src/runtime/seccomp/table-x32.ts';
import { run, AUDIT_X86_64, AUDIT_I386, AUDIT_AARCH64, X32, ALLOW, KILL_PROCESS, errno } from './seccomp-vm.ts';

const { program, flags } = compileSeccomp(defaultSeccompProfile());
const on64 = (nr: number, args: bigint[] = []) => run(program, { nr, arch: AUDIT_X86_64, args }).ret;
const EPERM = errno(1);

const BLOCKED = [
  'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'mount', 'umount2', 'pivot_root',
  'swapon', 'swapoff', 'reboot', 'bpf', 'perf_event_open', 'acct', 'add_key', 'keyctl', 'request_key',
  'open_by_handle_at', 'userfaultfd', 'setns', 'settimeofday', 'clock_settime', 'iopl', 'ioperm', 'syslog',
  'quotactl', 'io_uring_setup', 'fsopen', 'move_mount', 'open_tree', 'lookup_dcookie', 'uselib', 'vhangup',
];

test('the default profile compiles small, with no flags, for three x86 ABIs', () => {
  assert.equal(flags, 0);
  assert.ok(program.length / 8 < 1500, `${program.length / 8} instructions`);
  assert.deepEqual(defaultSeccompProfile().architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.equal(run(program, { nr: 0, arch: AUDIT_AARCH64 }).ret, KILL_PROCESS);
});

test('dangerous syscalls get EPERM on every ABI', () => {
  for (const name of BLOCKED) {
    assert.ok(!DEFAULT_ALLOWED_SYSCALLS.includes(name), name);
    assert.equal(on64(NR[name]), EPERM, name);
    if (SYSCALLS_I386[name] !== undefined) assert.equal(run(program, { nr: SYSCALLS_I386[name], arch: AUDIT_I386 }).ret, EPERM, `i386 ${name}`);
    if (SYSCALLS_X32[name] !== undefined) assert.equal(run(program, { nr: (X32 | SYSCALLS_X32[name]) >>> 0, arch: AUDIT_X86_64 }).ret, EPERM, `x32 ${name}`);
  }
});

test('ordinary syscalls are allowed on every ABI that has them', () => {
  let seen = 0;
  for (const name of DEFAULT_ALLOWED_SYSCALLS) {
    if (NR[name] !== undefined) { assert.equal(on64(NR[name]), ALLOW, name); seen++; }
    if (SYSCALLS_I386[name] !== undefined) assert.equal(run(program, { nr: SYSCALLS_I386[name], arch: AUDIT_I386 }).ret, ALLOW, `i386 ${name}`);
    if (SYSCALLS_X32[name] !== undefined) assert.equal(run(program, { nr: (X32 | SYSCALLS_X32[name]) >>> 0, arch: AUDIT_X86_64 }).ret, ALLOW, `x32 ${name}`);
  }
  assert.ok(seen > 250, `only ${seen} x86_64 syscalls allowed`);
  for (const name of ['read', 'write', 'openat', 'execve', 'exit_group', 'mmap', 'futex', 'clone', 'wait4']) {
    assert.ok(NR[name] !== undefined);
  }
});

test('clone and unshare are allowed only without namespace flags; clone3 gets ENOSYS', () => {
  const CLONE_THREAD_FLAGS = 0x3d0f00n; // what pthread_create passes
  assert.equal(on64(NR.clone, [CLONE_THREAD_FLAGS]), ALLOW);
  assert.equal(on64(NR.clone, [0x11n /* SIGCHLD, fork() */]), ALLOW);
  for (const ns of [0x00020000n, 0x02000000n, 0x04000000n, 0x08000000n, 0x10000000n, 0x20000000n, 0x40000000n]) {
    assert.equal(on64(NR.clone, [0x11n | ns]), EPERM, `clone ns 0x${ns.toString(16)}`);
    assert.equal(on64(NR.unshare, [ns]), EPERM, `unshare ns 0x${ns.toString(16)}`);
  }
  assert.equal(on64(NR.unshare, [0x80n]), EPERM); // CLONE_NEWTIME
  assert.equal(on64(NR.unshare, [0x200n /* CLONE_FS */]), ALLOW);
  assert.equal(on64(NR.clone3), errno(38));
  assert.equal(run(program, { nr: SYSCALLS_I386.clone, arch: AUDIT_I386, args: [0x10000000n] }).ret, EPERM);
});

test('personality only with common personas; socket with any family but AF_VSOCK', () => {
  for (const p of [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn]) assert.equal(on64(NR.personality, [p]), ALLOW);
  for (const p of [0x0040000n /* ADDR_NO_RANDOMIZE */, 1n, 0x1_0000_0000n]) assert.equal(on64(NR.personality, [p]), EPERM);
  assert.equal(on64(NR.socket, [2n]), ALLOW);
  assert.equal(on64(NR.socket, [16n]), ALLOW);
  assert.equal(on64(NR.socket, [40n]), EPERM);
});

test('defaultSeccompProfile returns a fresh copy each time', () => {
  const a = defaultSeccompProfile();
  a.syscalls![0].names.push('mount');
  assert.equal(defaultSeccompProfile().syscalls![0].names.includes('mount'), false);
});
