import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSeccomp } from '../../src/runtime/seccomp/index.ts';
import { Assembler, BPF_JMP_JEQ_K } from '../../src/runtime/seccomp/bpf.ts';
import { SYSCALLS_X86_64 } from '../../src/runtime/seccomp/table-x86_64.ts';
import { SYSCALLS_I386 } from '../../src/runtime/seccomp/table-i386.ts';
import { SYSCALLS_X32 } from '../../src/runtime/seccomp/table-x32.ts';
import { PierError } from '../../src/common/errors.ts';
import type { Seccomp } from '../../src/runtime/spec.ts';
import {
  run, decode, check, AUDIT_X86_64, AUDIT_I386, AUDIT_AARCH64, X32, ALLOW, KILL_PROCESS, KILL_THREAD, TRAP, LOG,
  errno, trace,
} from './seccomp-vm.ts';

const NR = SYSCALLS_X86_64;

function outcome(p: Seccomp, nr: number, args: bigint[] = [], arch = AUDIT_X86_64): number {
  return run(compileSeccomp(p).program, { nr, arch, args }).ret;
}

function throwsPier(f: () => unknown, re: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof PierError && re.test(e.message));
}

test('default action applies to syscalls without rules', () => {
  assert.equal(outcome({ defaultAction: 'SCMP_ACT_ALLOW' }, NR.mkdir), ALLOW);
  assert.equal(outcome({ defaultAction: 'SCMP_ACT_ERRNO' }, NR.mkdir), errno(1));
  assert.equal(outcome({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38 }, NR.getpid), errno(38));
  assert.equal(outcome({ defaultAction: 'SCMP_ACT_KILL_PROCESS' }, NR.getpid), KILL_PROCESS);
  const p: Seccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW' }] };
  assert.equal(outcome(p, NR.getpid), ALLOW);
  assert.equal(outcome(p, NR.getppid), errno(1));
  assert.equal(outcome(p, 0), errno(1));
  assert.equal(outcome(p, 0x3fffffff), errno(1));
});

test('every action name maps to its SECCOMP_RET value, with errnoRet for ERRNO and TRACE', () => {
  const cases: [Partial<Seccomp['syscalls'] extends (infer S)[] | undefined ? S : never>, number][] = [
    [{ action: 'SCMP_ACT_KILL' }, KILL_THREAD],
    [{ action: 'SCMP_ACT_KILL_THREAD' }, KILL_THREAD],
    [{ action: 'SCMP_ACT_KILL_PROCESS' }, KILL_PROCESS],
    [{ action: 'SCMP_ACT_TRAP' }, TRAP],
    [{ action: 'SCMP_ACT_LOG' }, LOG],
    [{ action: 'SCMP_ACT_ERRNO' }, errno(1)],
    [{ action: 'SCMP_ACT_ERRNO', errnoRet: 13 }, errno(13)],
    [{ action: 'SCMP_ACT_ERRNO', errnoRet: 0 }, errno(0)],
    [{ action: 'SCMP_ACT_TRACE' }, trace(1)],
    [{ action: 'SCMP_ACT_TRACE', errnoRet: 4242 }, trace(4242)],
  ];
  for (const [rule, want] of cases) {
    const p: Seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: rule.action!, errnoRet: rule.errnoRet }] };
    assert.equal(outcome(p, NR.mkdir), want, rule.action);
    assert.equal(outcome(p, NR.rmdir), ALLOW);
  }
});

// Reference semantics for the comparison operators, on unsigned 64-bit values.
const U64 = 0xffff_ffff_ffff_ffffn;
function holds(op: string, arg: bigint, v: bigint, v2: bigint): boolean {
  switch (op) {
    case 'SCMP_CMP_EQ': return arg === v;
    case 'SCMP_CMP_NE': return arg !== v;
    case 'SCMP_CMP_LT': return arg < v;
    case 'SCMP_CMP_LE': return arg <= v;
    case 'SCMP_CMP_GT': return arg > v;
    case 'SCMP_CMP_GE': return arg >= v;
    case 'SCMP_CMP_MASKED_EQ': return (arg & v) === v2;
  }
  throw new Error(op);
}

const INTERESTING = [
  0n, 1n, 2n, 0x7fffffffn, 0x80000000n, 0xfffffffen, 0xffffffffn, 0x1_0000_0000n, 0x1_0000_0001n, 0x1_ffff_ffffn,
  0x2_0000_0000n, 0x2_0000_0001n, 0xdead_beef_0000_0005n, 0x7fff_ffff_ffff_ffffn, 0x8000_0000_0000_0000n, U64 - 1n, U64,
];

test('each comparison operator matches 64-bit unsigned semantics, high half included', () => {
  const values = [0n, 1n, 0xffffffffn, 0x1_0000_0000n, 0x1_0000_0001n, 0x2_0000_0000n, 0x1f_ffff_ffff_ffffn];
  for (const op of ['SCMP_CMP_EQ', 'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_GT', 'SCMP_CMP_GE']) {
    for (const v of values) {
      // Test on arg 3 so the offsets of a non-first argument are exercised too.
      const p: Seccomp = {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 77, args: [{ index: 3, value: Number(v), op }] }],
      };
      const { program } = compileSeccomp(p);
      for (const a of INTERESTING) {
        const got = run(program, { nr: NR.mkdir, arch: AUDIT_X86_64, args: [0n, 0n, 0n, a, 0n, 0n] }).ret;
        assert.equal(got, holds(op, a, v, 0n) ? errno(77) : ALLOW, `${op} arg=${a.toString(16)} value=${v.toString(16)}`);
      }
      // Another argument carrying the compared value must not matter.
      const other = run(program, { nr: NR.mkdir, arch: AUDIT_X86_64, args: [v, v, v, 5n, v, v] }).ret;
      assert.equal(other, holds(op, 5n, v, 0n) ? errno(77) : ALLOW);
    }
  }
});

test('MASKED_EQ compares (arg & value) with valueTwo in both halves', () => {
  const masks: [bigint, bigint][] = [
    [0x7e020000n, 0n], // clone namespace flags clear
    [0xffn, 0x11n],
    [0x1_0000_0000n, 0x1_0000_0000n], // a bit only in the high half
    [0xffff_0000_0000_00ffn, 0xdead_0000_0000_0005n],
  ];
  for (const [mask, datum] of masks) {
    const p: Seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['clone'], action: 'SCMP_ACT_TRAP', args: [{ index: 0, value: Number(mask), valueTwo: Number(datum), op: 'SCMP_CMP_MASKED_EQ' }] }],
    };
    const safe = Number.isSafeInteger(Number(mask)) && Number.isSafeInteger(Number(datum));
    if (!safe) {
      // Values JSON can't carry exactly are refused, but bigints (from a bigint-aware parser) work.
      throwsPier(() => compileSeccomp(p), /above 2\^53/);
      p.syscalls![0].args![0].value = mask as unknown as number;
      p.syscalls![0].args![0].valueTwo = datum as unknown as number;
    }
    const { program } = compileSeccomp(p);
    for (const a of [...INTERESTING, 0x0102_0000n, 0x11n, 0x1_0000_0011n, 0xdead_1234_5678_0005n, 0xdeae_0000_0000_0005n]) {
      const got = run(program, { nr: NR.clone, arch: AUDIT_X86_64, args: [a] }).ret;
      assert.equal(got, holds('SCMP_CMP_MASKED_EQ', a, mask, datum) ? TRAP : ALLOW, `mask=${mask.toString(16)} arg=${a.toString(16)}`);
    }
  }
});

test('conditions in one rule are ANDed; rules for the same syscall are ORed', () => {
  const p: Seccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
      {
        names: ['mmap', 'mprotect'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 1, value: 4096, op: 'SCMP_CMP_GE' }, { index: 2, value: 4, op: 'SCMP_CMP_MASKED_EQ', valueTwo: 0 }],
      },
    ],
  };
  const { program } = compileSeccomp(p);
  const r = (nr: number, args: bigint[]) => run(program, { nr, arch: AUDIT_X86_64, args }).ret;
  assert.equal(r(NR.personality, [0n]), ALLOW);
  assert.equal(r(NR.personality, [8n]), ALLOW);
  assert.equal(r(NR.personality, [9n]), errno(1));
  assert.equal(r(NR.personality, [0x1_0000_0000n]), errno(1));
  for (const nr of [NR.mmap, NR.mprotect]) {
    assert.equal(r(nr, [0n, 8192n, 3n]), ALLOW);
    assert.equal(r(nr, [0n, 100n, 3n]), errno(1)); // first condition fails
    assert.equal(r(nr, [0n, 8192n, 7n]), errno(1)); // second fails
    assert.equal(r(nr, [0n, 100n, 7n]), errno(1));
  }
});

test('argument rules of a syscall are tried in order; the default action applies when none matches', () => {
  const p: Seccomp = {
    defaultAction: 'SCMP_ACT_KILL_PROCESS',
    syscalls: [
      { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 97, args: [{ index: 0, value: 40, op: 'SCMP_CMP_EQ' }] },
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2, op: 'SCMP_CMP_EQ' }] },
    ],
  };
  assert.equal(outcome(p, NR.socket, [2n]), ALLOW);
  assert.equal(outcome(p, NR.socket, [40n]), errno(97));
  assert.equal(outcome(p, NR.socket, [10n]), KILL_PROCESS);
  assert.equal(outcome(p, NR.bind, [40n]), KILL_PROCESS);
});

test('a foreign architecture is killed unless listed', () => {
  const p: Seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] };
  assert.equal(outcome(p, 39, [], AUDIT_I386), KILL_PROCESS);
  assert.equal(outcome(p, 0, [], AUDIT_AARCH64), KILL_PROCESS);
  assert.equal(outcome(p, NR.mkdir, [], AUDIT_X86_64), errno(1));

  const multi: Seccomp = { ...p, architectures: ['SCMP_ARCH_X86'] };
  // i386 uses its own numbers: mkdir is 39 there (getpid on x86_64).
  assert.equal(SYSCALLS_I386.mkdir, 39);
  assert.equal(outcome(multi, 39, [], AUDIT_I386), errno(1));
  assert.equal(outcome(multi, NR.mkdir, [], AUDIT_I386), ALLOW); // 83 is symlink on i386
  assert.equal(outcome(multi, 39, [], AUDIT_X86_64), ALLOW); // getpid on x86_64
  assert.equal(outcome(multi, NR.mkdir, [], AUDIT_X86_64), errno(1)); // native stays included
  assert.equal(outcome(multi, 0, [], AUDIT_AARCH64), KILL_PROCESS);
});

test('x32 syscalls (nr with 0x40000000) are killed unless SCMP_ARCH_X32 is listed, then use x32 numbers', () => {
  const p: Seccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['mkdir', 'ioctl'], action: 'SCMP_ACT_ERRNO', errnoRet: 5 }],
  };
  // Without x32, an x32 mkdir must not slip through as "unknown, default allow".
  assert.equal(outcome(p, X32 | NR.mkdir, [], AUDIT_X86_64), KILL_PROCESS);
  assert.equal(outcome(p, X32 | NR.getpid, [], AUDIT_X86_64), KILL_PROCESS);
  // nr -1 (a tracer skipping the call) is not x32; it gets the default action.
  assert.equal(outcome(p, 0xffffffff, [], AUDIT_X86_64), ALLOW);

  const withX32: Seccomp = { ...p, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'] };
  assert.equal(SYSCALLS_X32.mkdir, 83);
  assert.equal(SYSCALLS_X32.ioctl, 514); // x32 has its own ioctl entry point; 16 is 64-bit only
  assert.equal(outcome(withX32, (X32 | 83) >>> 0, [], AUDIT_X86_64), errno(5));
  assert.equal(outcome(withX32, (X32 | 514) >>> 0, [], AUDIT_X86_64), errno(5));
  assert.equal(outcome(withX32, (X32 | 16) >>> 0, [], AUDIT_X86_64), ALLOW);
  assert.equal(outcome(withX32, (X32 | NR.getpid) >>> 0, [], AUDIT_X86_64), ALLOW);
  assert.equal(outcome(withX32, NR.mkdir, [], AUDIT_X86_64), errno(5));
  assert.equal(outcome(withX32, NR.ioctl, [], AUDIT_X86_64), errno(5));
  assert.equal(outcome(withX32, 39, [], AUDIT_I386), KILL_PROCESS);
});

test('unknown syscall names are skipped; names missing on one arch only affect that arch', () => {
  const p: Seccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    syscalls: [{ names: ['no_such_syscall', 'arch_prctl', 'socketcall', 'getpid'], action: 'SCMP_ACT_ALLOW' }],
  };
  assert.equal(outcome(p, NR.getpid), ALLOW);
  assert.equal(outcome(p, NR.arch_prctl), ALLOW);
  assert.equal(outcome(p, SYSCALLS_I386.getpid, [], AUDIT_I386), ALLOW);
  assert.equal(outcome(p, SYSCALLS_I386.socketcall, [], AUDIT_I386), ALLOW);
  assert.equal(outcome(p, SYSCALLS_I386.arch_prctl, [], AUDIT_I386), ALLOW); // i386 has arch_prctl too
  assert.equal(outcome(p, SYSCALLS_I386.mkdir, [], AUDIT_I386), errno(1));
  // A profile of only unknown names still compiles.
  assert.equal(outcome({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['nope'], action: 'SCMP_ACT_KILL' }] }, 0), ALLOW);
});

test('syscalls newer than the generated headers are known', () => {
  const p: Seccomp = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'], syscalls: [{ names: ['fchmodat2', 'map_shadow_stack'], action: 'SCMP_ACT_ALLOW' }] };
  assert.equal(outcome(p, 452), ALLOW);
  assert.equal(outcome(p, 453), ALLOW);
  assert.equal(outcome(p, 452, [], AUDIT_I386), ALLOW);
  assert.equal(outcome(p, 453, [], AUDIT_I386), errno(1));
  assert.equal(outcome(p, (X32 | 452) >>> 0), ALLOW);
  assert.equal(outcome(p, (X32 | 453) >>> 0), errno(1));
});

test('flags become the seccomp(2) flag bits', () => {
  assert.equal(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' }).flags, 0);
  assert.equal(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_TSYNC'] }).flags, 1);
  assert.equal(compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] }).flags, 6);
});

test('bad profiles are refused with the field named', () => {
  const base = (extra: Partial<Seccomp>): Seccomp => ({ defaultAction: 'SCMP_ACT_ALLOW', ...extra });
  throwsPier(() => compileSeccomp({ defaultAction: 'SCMP_ACT_NOPE' }), /linux\.seccomp\.defaultAction: unknown seccomp action "SCMP_ACT_NOPE"/);
  throwsPier(() => compileSeccomp(base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] })), /syscalls\[0\]\.action: SCMP_ACT_NOTIFY is not supported/);
  throwsPier(() => compileSeccomp(base({ listenerPath: '/run/x.sock' })), /listenerPath.*not supported/);
  throwsPier(() => compileSeccomp(base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }, { names: ['write'], action: 'SCMP_ACT_BOGUS' }] })), /syscalls\[1\]\.action: unknown seccomp action "SCMP_ACT_BOGUS"/);
  throwsPier(() => compileSeccomp(base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_XX' }] }] })), /syscalls\[0\]\.args\[0\]\.op: unknown seccomp operator "SCMP_CMP_XX" \(for syscall "read"\)/);
  throwsPier(() => compileSeccomp(base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] })), /args\[0\]\.index must be 0 to 5/);
  throwsPier(() => compileSeccomp(base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] })), /args\[0\]\.value must be a non-negative integer/);
  throwsPier(() => compileSeccomp(base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 2 ** 60, op: 'SCMP_CMP_EQ' }] }] })), /args\[0\]\.value is .* above 2\^53/);
  throwsPier(() => compileSeccomp(base({ syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] })), /syscalls\[0\]\.names must be a non-empty list/);
  throwsPier(() => compileSeccomp(base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }] })), /syscalls\[0\]\.errnoRet is only valid with SCMP_ACT_ERRNO/);
  throwsPier(() => compileSeccomp(base({ syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 70000 }] })), /syscalls\[0\]\.errnoRet must be an integer from 0 to 4095/);
  throwsPier(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: -1 }), /defaultErrnoRet must be an integer/);
  throwsPier(() => compileSeccomp(base({ flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] })), /flags: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"/);
  throwsPier(() => compileSeccomp(base({ architectures: ['SCMP_ARCH_AARCH64'] })), /architectures\[0\]: architecture "SCMP_ARCH_AARCH64" is not supported/);
  throwsPier(() => compileSeccomp(base({ architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_Z80'] })), /architectures\[1\]: unknown architecture "SCMP_ARCH_Z80"/);
});

test('repeated rules for one syscall follow libseccomp: the first unconditional one wins and supersedes argument rules', () => {
  const p = (syscalls: Seccomp['syscalls']): Seccomp => ({ defaultAction: 'SCMP_ACT_ALLOW', syscalls });
  // podman's generated profile lists setns as ALLOW and later as ERRNO(1): ALLOW applies.
  assert.equal(outcome(p([{ names: ['setns'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }, { names: ['setns'], action: 'SCMP_ACT_KILL' }]), NR.setns), errno(1));
  assert.equal(outcome(p([{ names: ['read'], action: 'SCMP_ACT_KILL' }, { names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 2 }]), NR.read), KILL_THREAD);
  const cond = { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 5, args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] };
  const uncond = { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 9 };
  for (const order of [[cond, uncond], [uncond, cond]]) {
    assert.equal(outcome(p(order), NR.personality, [8n]), errno(9));
    assert.equal(outcome(p(order), NR.personality, [0n]), errno(9));
  }
});

test('a rule for every x86_64 syscall, each with its own errno, dispatches exactly', () => {
  const names = Object.keys(NR);
  const p: Seccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: names.map((n) => ({ names: [n], action: 'SCMP_ACT_ERRNO', errnoRet: (NR[n] % 4000) + 1 })),
  };
  const { program } = compileSeccomp(p);
  let maxSteps = 0;
  for (const n of names) {
    const { ret, steps } = run(program, { nr: NR[n], arch: AUDIT_X86_64 });
    assert.equal(ret, errno((NR[n] % 4000) + 1), n);
    maxSteps = Math.max(maxSteps, steps);
  }
  for (const gap of [335, 400, 1000, 0x3fffffff]) {
    assert.equal(run(program, { nr: gap, arch: AUDIT_X86_64 }).ret, ALLOW);
  }
  // Grouped binary search: a lookup takes a handful of steps, not hundreds.
  assert.ok(maxSteps < 20, `lookup took ${maxSteps} steps`);
});

test('long bodies are reached through JA trampolines and stay correct', () => {
  // 300 conditional rules on one syscall make its body longer than a conditional jump can skip.
  const p: Seccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      ...Array.from({ length: 300 }, (_, i) => ({
        names: ['write'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: i * 3, op: 'SCMP_CMP_EQ' }],
      })),
      { names: ['read', 'openat', 'close'], action: 'SCMP_ACT_ALLOW' },
    ],
  };
  const { program } = compileSeccomp(p);
  const insns = decode(program);
  check(insns);
  assert.ok(insns.some((i) => i.code === 0x05), 'expected at least one JA');
  const r = (nr: number, a0 = 0n) => run(program, { nr, arch: AUDIT_X86_64, args: [a0] }).ret;
  assert.equal(r(NR.write, 0n), ALLOW);
  assert.equal(r(NR.write, 897n), ALLOW);
  assert.equal(r(NR.write, 898n), errno(1));
  assert.equal(r(NR.write, 0x1_0000_0000n), errno(1));
  for (const n of ['read', 'openat', 'close']) assert.equal(r(NR[n]), ALLOW);
  assert.equal(r(NR.mkdir), errno(1));
});

test('a program beyond BPF_MAXINSNS is refused', () => {
  const p: Seccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: Array.from({ length: 1000 }, (_, i) => ({
      names: ['write'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: i, op: 'SCMP_CMP_EQ' }],
    })),
  };
  throwsPier(() => compileSeccomp(p), /more than the kernel limit of 4096/);
});

test('assembler: far targets get trampolines in both branches', () => {
  const asm = new Assembler();
  const t = asm.label();
  const f = asm.label();
  asm.load(0);
  asm.jump(BPF_JMP_JEQ_K, 7, t, f);
  for (let i = 0; i < 300; i++) asm.ret(100 + i);
  asm.bind(t);
  asm.ret(1);
  for (let i = 0; i < 300; i++) asm.ret(1000 + i);
  asm.bind(f);
  asm.ret(2);
  const program = asm.assemble();
  assert.equal(decode(program).length, 2 + 2 + 300 + 1 + 300 + 1);
  assert.equal(run(program, { nr: 7, arch: 0 }).ret, 1);
  assert.equal(run(program, { nr: 8, arch: 0 }).ret, 2);
});
