/**
 * Compiles an OCI `linux.seccomp` profile into a classic-BPF program for seccomp(SECCOMP_SET_MODE_FILTER).
 *
 * Program shape:
 *   load arch; dispatch to one section per architecture; any other arch -> KILL_PROCESS
 *   section: load nr; binary search (JGE only) over runs of numbers sharing one outcome; a leaf
 *            returns that outcome, or evaluates one syscall's argument rules.
 * x86_64 and x32 share AUDIT_ARCH_X86_64 and differ by bit 0x40000000 in nr, so the x86_64 section
 * sends numbers with that bit to the x32 section, or kills them when x32 is not allowed.
 */
import { PierError } from '../../common/errors.ts';
import type { Seccomp, SeccompSyscall } from '../spec.ts';
import {
  Assembler, argLoOffset, OFF_ARCH, OFF_NR,
  BPF_JMP_JEQ_K, BPF_JMP_JGE_K, BPF_JMP_JGT_K,
  SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD,
  SECCOMP_RET_LOG, SECCOMP_RET_TRACE, SECCOMP_RET_TRAP,
  type Label,
} from './bpf.ts';
import { ARCH_SECTIONS, X32_SYSCALL_BIT, architectureSections, type ArchSection } from './arch.ts';

const EPERM = 1;
/** The kernel clamps SECCOMP_RET_ERRNO data to MAX_ERRNO; a larger value would not be what was asked. */
const MAX_ERRNO = 4095;

/** seccomp(2) filter flags (linux/seccomp.h) that the runtime-spec names. */
export const SECCOMP_FILTER_FLAGS: Readonly<Record<string, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
};

export const SECCOMP_OPERATORS = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
] as const;
type Op = (typeof SECCOMP_OPERATORS)[number];

const FIXED_ACTIONS: Readonly<Record<string, number>> = {
  SCMP_ACT_KILL: SECCOMP_RET_KILL_THREAD,
  SCMP_ACT_KILL_THREAD: SECCOMP_RET_KILL_THREAD,
  SCMP_ACT_KILL_PROCESS: SECCOMP_RET_KILL_PROCESS,
  SCMP_ACT_TRAP: SECCOMP_RET_TRAP,
  SCMP_ACT_ALLOW: SECCOMP_RET_ALLOW,
  SCMP_ACT_LOG: SECCOMP_RET_LOG,
};

/** Action names compileSeccomp accepts (SCMP_ACT_NOTIFY is refused). */
export const SECCOMP_ACTIONS: readonly string[] = [...Object.keys(FIXED_ACTIONS), 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE'];

/** Turns an action name (+ errnoRet) into a SECCOMP_RET_* value. */
function parseAction(action: unknown, errnoRet: unknown, field: string, errnoField: string): number {
  if (typeof action !== 'string') throw new PierError(`${field} must be a string`);
  if (action === 'SCMP_ACT_NOTIFY') {
    throw new PierError(`${field}: SCMP_ACT_NOTIFY is not supported by pier-runtime (no seccomp notify listener)`);
  }
  const withData = action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_TRACE';
  if (!withData) {
    if (!Object.hasOwn(FIXED_ACTIONS, action)) throw new PierError(`${field}: unknown seccomp action "${action}"`);
    if (errnoRet !== undefined && errnoRet !== null) {
      throw new PierError(`${errnoField} is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${action}`);
    }
    return FIXED_ACTIONS[action];
  }
  let data = EPERM; // runc's default data for both ERRNO and TRACE
  if (errnoRet !== undefined && errnoRet !== null) {
    const max = action === 'SCMP_ACT_ERRNO' ? MAX_ERRNO : 0xffff;
    if (typeof errnoRet !== 'number' || !Number.isInteger(errnoRet) || errnoRet < 0 || errnoRet > max) {
      throw new PierError(`${errnoField} must be an integer from 0 to ${max}, got ${JSON.stringify(errnoRet)}`);
    }
    data = errnoRet;
  }
  return ((action === 'SCMP_ACT_ERRNO' ? SECCOMP_RET_ERRNO : SECCOMP_RET_TRACE) | data) >>> 0;
}

/** A 64-bit argument operand; JSON numbers past 2^53 have already lost bits, so they are refused. */
function parseU64(v: unknown, field: string): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new PierError(`${field} must fit in an unsigned 64-bit integer, got ${v}`);
    return v;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new PierError(`${field} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  if (!Number.isSafeInteger(v)) {
    throw new PierError(`${field} is ${v}, above 2^53, which JSON numbers cannot carry exactly`);
  }
  return BigInt(v);
}

interface Cond { index: number; op: Op; value: bigint; valueTwo: bigint }
interface Rule { conds: Cond[]; action: number }
/** Everything that applies to one syscall number: argument rules in profile order, then the fallback. */
interface SyscallPlan { name: string; rules: Rule[]; fallback: number | undefined }

interface ParsedEntry { names: string[]; action: number; actionName: string; conds: Cond[] }

function parseEntry(s: SeccompSyscall, i: number): ParsedEntry {
  const field = `linux.seccomp.syscalls[${i}]`;
  if (s === null || typeof s !== 'object') throw new PierError(`${field} must be an object`);
  if (!Array.isArray(s.names) || s.names.length === 0) throw new PierError(`${field}.names must be a non-empty list of syscall names`);
  s.names.forEach((n, j) => {
    if (typeof n !== 'string' || n === '') throw new PierError(`${field}.names[${j}] must be a non-empty string`);
  });
  const action = parseAction(s.action, s.errnoRet, `${field}.action`, `${field}.errnoRet`);
  const conds: Cond[] = [];
  if (s.args !== undefined && s.args !== null) {
    if (!Array.isArray(s.args)) throw new PierError(`${field}.args must be a list`);
    s.args.forEach((a, j) => {
      const af = `${field}.args[${j}]`;
      if (a === null || typeof a !== 'object') throw new PierError(`${af} must be an object`);
      if (!Number.isInteger(a.index) || a.index < 0 || a.index > 5) {
        throw new PierError(`${af}.index must be 0 to 5 (seccomp sees six syscall arguments), got ${JSON.stringify(a.index)}`);
      }
      if (!(SECCOMP_OPERATORS as readonly string[]).includes(a.op)) {
        throw new PierError(`${af}.op: unknown seccomp operator "${String(a.op)}" (for syscall "${s.names[0]}")`);
      }
      const value = parseU64(a.value, `${af}.value`);
      const valueTwo = a.valueTwo === undefined || a.valueTwo === null ? 0n : parseU64(a.valueTwo, `${af}.valueTwo`);
      conds.push({ index: a.index, op: a.op as Op, value, valueTwo });
    });
  }
  return { names: s.names, action, actionName: s.action, conds };
}

/** Groups the parsed entries by syscall number for one architecture; names it lacks are skipped. */
function planSection(entries: ParsedEntry[], arch: ArchSection, defaultAction: number): Map<number, SyscallPlan> {
  const plans = new Map<number, SyscallPlan>();
  for (const e of entries) {
    for (const name of e.names) {
      const nr = arch.resolve(name);
      if (nr === undefined) continue; // like libseccomp: a syscall this arch lacks cannot be called
      let p = plans.get(nr);
      if (!p) { p = { name, rules: [], fallback: undefined }; plans.set(nr, p); }
      // libseccomp's rule for repeats, which profiles rely on (podman's lists setns both as ALLOW
      // and as ERRNO): the first unconditional rule for a syscall wins, and it supersedes any
      // argument rules, before or after it.
      if (p.fallback !== undefined) continue;
      if (e.conds.length > 0) {
        p.rules.push({ conds: e.conds, action: e.action });
      } else {
        p.fallback = e.action;
        p.rules = [];
      }
    }
  }
  // A syscall whose only effect is the default action needs no code.
  for (const [nr, p] of plans) {
    if (p.rules.every((r) => r.action === (p.fallback ?? defaultAction)) && (p.fallback ?? defaultAction) === defaultAction) {
      plans.delete(nr);
    }
  }
  return plans;
}

/** Emits a test of one 64-bit argument condition; falls through when it holds, jumps to `fail` otherwise. */
function emitCond(asm: Assembler, c: Cond, fail: Label): void {
  const lo = argLoOffset(c.index);
  const hi = lo + 4;
  const vHi = Number(c.value >> 32n);
  const vLo = Number(c.value & 0xffff_ffffn);
  const pass = asm.label();
  switch (c.op) {
    case 'SCMP_CMP_EQ':
      asm.load(hi); asm.jump(BPF_JMP_JEQ_K, vHi, null, fail);
      asm.load(lo); asm.jump(BPF_JMP_JEQ_K, vLo, null, fail);
      break;
    case 'SCMP_CMP_NE':
      asm.load(hi); asm.jump(BPF_JMP_JEQ_K, vHi, null, pass);
      asm.load(lo); asm.jump(BPF_JMP_JEQ_K, vLo, fail, null);
      break;
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE': {
      // hi > vHi decides; hi == vHi defers to the low half; hi < vHi fails.
      asm.load(hi); asm.jump(BPF_JMP_JGT_K, vHi, pass, null); asm.jump(BPF_JMP_JEQ_K, vHi, null, fail);
      asm.load(lo); asm.jump(c.op === 'SCMP_CMP_GT' ? BPF_JMP_JGT_K : BPF_JMP_JGE_K, vLo, null, fail);
      break;
    }
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE': {
      // LT is "not GE" and LE is "not GT", with pass and fail swapped.
      asm.load(hi); asm.jump(BPF_JMP_JGT_K, vHi, fail, null); asm.jump(BPF_JMP_JEQ_K, vHi, null, pass);
      asm.load(lo); asm.jump(c.op === 'SCMP_CMP_LT' ? BPF_JMP_JGE_K : BPF_JMP_JGT_K, vLo, fail, null);
      break;
    }
    case 'SCMP_CMP_MASKED_EQ': {
      // OCI/libseccomp: value is the mask, valueTwo the datum: (arg & value) == valueTwo.
      const dHi = Number(c.valueTwo >> 32n);
      const dLo = Number(c.valueTwo & 0xffff_ffffn);
      asm.load(hi); asm.and(vHi); asm.jump(BPF_JMP_JEQ_K, dHi, null, fail);
      asm.load(lo); asm.and(vLo); asm.jump(BPF_JMP_JEQ_K, dLo, null, fail);
      break;
    }
  }
  asm.bind(pass);
}

/** Argument rules of one syscall: the first rule whose conditions all hold decides. Ends in a return. */
function emitBody(asm: Assembler, p: SyscallPlan, defaultAction: number): void {
  for (const r of p.rules) {
    const next = asm.label();
    for (const c of r.conds) emitCond(asm, c, next);
    asm.ret(r.action);
    asm.bind(next);
  }
  asm.ret(p.fallback ?? defaultAction);
}

/** A run of syscall numbers [lo, hi] that share one outcome: a fixed return, or one syscall's rules. */
type Segment = { lo: number; hi: number; ret: number; plan?: undefined } | { lo: number; hi: number; plan: SyscallPlan };

/** Splits the whole nr space into segments, merging neighbours that return the same action. */
function segments(plans: Map<number, SyscallPlan>, defaultAction: number): Segment[] {
  const out: Segment[] = [];
  const push = (lo: number, hi: number, ret: number): void => {
    const last = out[out.length - 1];
    if (last && last.plan === undefined && last.ret === ret && last.hi + 1 === lo) last.hi = hi;
    else out.push({ lo, hi, ret });
  };
  let next = 0;
  for (const nr of [...plans.keys()].sort((a, b) => a - b)) {
    if (nr > next) push(next, nr - 1, defaultAction);
    const p = plans.get(nr)!;
    if (p.rules.length === 0) push(nr, nr, p.fallback ?? defaultAction);
    else out.push({ lo: nr, hi: nr, plan: p });
    next = nr + 1;
  }
  if (next <= 0xffffffff) push(next, 0xffffffff, defaultAction);
  return out;
}

/** Binary search on A = nr over contiguous segments; every path ends in a return. */
function emitDispatch(asm: Assembler, segs: Segment[], defaultAction: number): void {
  if (segs.length === 1) {
    const s = segs[0];
    if (s.plan === undefined) asm.ret(s.ret);
    else emitBody(asm, s.plan, defaultAction);
    return;
  }
  const mid = segs.length >> 1;
  const right = asm.label();
  asm.jump(BPF_JMP_JGE_K, segs[mid].lo, right, null);
  emitDispatch(asm, segs.slice(0, mid), defaultAction);
  asm.bind(right);
  emitDispatch(asm, segs.slice(mid), defaultAction);
}

/**
 * Compiles `profile` (the spec's linux.seccomp) for an x86_64 host.
 * `flags` is the seccomp(2) flags word, `program` the raw sock_filter array.
 */
export function compileSeccomp(profile: Seccomp): { flags: number; program: Uint8Array } {
  if (profile === null || typeof profile !== 'object') throw new PierError('linux.seccomp must be an object');
  if (profile.listenerPath !== undefined && profile.listenerPath !== '') {
    throw new PierError('linux.seccomp.listenerPath: seccomp notify listeners are not supported by pier-runtime');
  }
  const defaultAction = parseAction(profile.defaultAction, profile.defaultErrnoRet, 'linux.seccomp.defaultAction', 'linux.seccomp.defaultErrnoRet');

  let flags = 0;
  if (profile.flags !== undefined && profile.flags !== null) {
    if (!Array.isArray(profile.flags)) throw new PierError('linux.seccomp.flags must be a list');
    for (const f of profile.flags) {
      if (typeof f !== 'string' || !Object.hasOwn(SECCOMP_FILTER_FLAGS, f)) {
        throw new PierError(`linux.seccomp.flags: unknown flag "${String(f)}" (known: ${Object.keys(SECCOMP_FILTER_FLAGS).join(', ')})`);
      }
      flags |= SECCOMP_FILTER_FLAGS[f];
    }
  }

  const sections = architectureSections(profile.architectures);
  const syscalls = profile.syscalls ?? [];
  if (!Array.isArray(syscalls)) throw new PierError('linux.seccomp.syscalls must be a list');
  const entries = syscalls.map(parseEntry);

  const asm = new Assembler();
  const badArch = SECCOMP_RET_KILL_PROCESS;
  const x86_64 = ARCH_SECTIONS.SCMP_ARCH_X86_64;
  const x32 = sections.includes(ARCH_SECTIONS.SCMP_ARCH_X32) ? ARCH_SECTIONS.SCMP_ARCH_X32 : undefined;
  const i386 = sections.includes(ARCH_SECTIONS.SCMP_ARCH_X86) ? ARCH_SECTIONS.SCMP_ARCH_X86 : undefined;

  const l64 = asm.label();
  const l386 = i386 ? asm.label() : undefined;
  asm.load(OFF_ARCH);
  asm.jump(BPF_JMP_JEQ_K, x86_64.auditArch, l64, null);
  if (i386 && l386) asm.jump(BPF_JMP_JEQ_K, i386.auditArch, l386, null);
  asm.ret(badArch);

  // x86_64 (and x32, which shares its audit arch).
  asm.bind(l64);
  asm.load(OFF_NR);
  const high = asm.label();
  asm.jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, high, null);
  const plans64 = planSection(entries, x86_64, defaultAction);
  emitDispatch(asm, segments(plans64, defaultAction), defaultAction);
  asm.bind(high);
  // nr == -1 is what a tracer uses to skip a syscall; it is not an x32 call.
  const notSkip = asm.label();
  asm.jump(BPF_JMP_JEQ_K, 0xffffffff, null, notSkip);
  asm.ret(defaultAction);
  asm.bind(notSkip);
  if (x32) {
    const plansX32 = planSection(entries, x32, defaultAction);
    emitDispatch(asm, segments(plansX32, defaultAction), defaultAction);
  } else {
    asm.ret(badArch);
  }

  if (i386 && l386) {
    asm.bind(l386);
    asm.load(OFF_NR);
    const plans386 = planSection(entries, i386, defaultAction);
    emitDispatch(asm, segments(plans386, defaultAction), defaultAction);
  }

  return { flags, program: asm.assemble() };
}
