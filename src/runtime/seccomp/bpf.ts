/**
 * A tiny classic-BPF assembler for seccomp filters: instructions name their jump targets by label,
 * and `assemble()` lays them out, turning any conditional jump farther than 255 instructions into a
 * short jump to an inserted `JA` (whose offset is 32 bits).
 */
import { PierError } from '../../common/errors.ts';

// Instruction classes and fields from linux/bpf_common.h / linux/filter.h.
export const BPF_LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
export const BPF_ALU_AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
export const BPF_JMP_JA = 0x05; // BPF_JMP | BPF_JA
export const BPF_JMP_JEQ_K = 0x15;
export const BPF_JMP_JGT_K = 0x25;
export const BPF_JMP_JGE_K = 0x35;
export const BPF_JMP_JSET_K = 0x45;
export const BPF_RET_K = 0x06;

/** Kernel limit on a classic-BPF program's length. */
export const BPF_MAXINSNS = 4096;

// seccomp return values (linux/seccomp.h).
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_KILL_THREAD = 0x00000000;
export const SECCOMP_RET_TRAP = 0x00030000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_TRACE = 0x7ff00000;
export const SECCOMP_RET_LOG = 0x7ffc0000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_DATA = 0x0000ffff;

// Offsets into struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }.
export const OFF_NR = 0;
export const OFF_ARCH = 4;
/** Offset of the low (little-endian first) 32 bits of args[i]; the high half is 4 bytes later. */
export function argLoOffset(i: number): number {
  return 16 + 8 * i;
}

export type Label = { readonly id: number };

type Insn =
  | { kind: 'stmt'; code: number; k: number }
  | { kind: 'jcond'; code: number; k: number; t: Label | null; f: Label | null }
  | { kind: 'ja'; target: Label };

export class Assembler {
  private readonly insns: Insn[] = [];
  private readonly labelAt = new Map<number, number>();
  private nextLabel = 0;

  label(): Label {
    return { id: this.nextLabel++ };
  }

  /** Binds `l` to the next instruction emitted. */
  bind(l: Label): void {
    if (this.labelAt.has(l.id)) throw new Error(`bpf: label ${l.id} bound twice`);
    this.labelAt.set(l.id, this.insns.length);
  }

  get length(): number {
    return this.insns.length;
  }

  load(offset: number): void {
    this.insns.push({ kind: 'stmt', code: BPF_LD_W_ABS, k: offset });
  }

  and(k: number): void {
    this.insns.push({ kind: 'stmt', code: BPF_ALU_AND_K, k: k >>> 0 });
  }

  ret(k: number): void {
    this.insns.push({ kind: 'stmt', code: BPF_RET_K, k: k >>> 0 });
  }

  /** Conditional jump on A against k; a null target means the next instruction. */
  jump(code: number, k: number, t: Label | null, f: Label | null): void {
    this.insns.push({ kind: 'jcond', code, k: k >>> 0, t, f });
  }

  ja(target: Label): void {
    this.insns.push({ kind: 'ja', target });
  }

  /** Lays out the program and returns it as little-endian `struct sock_filter` records. */
  assemble(): Uint8Array {
    const n = this.insns.length;
    const target = (i: number, l: Label | null): number => {
      if (l === null) return i + 1;
      const at = this.labelAt.get(l.id);
      if (at === undefined || at >= n) throw new Error(`bpf: label ${l.id} is not bound to an instruction`);
      if (at <= i) throw new Error(`bpf: backward jump from ${i} to ${at}`);
      return at;
    };
    // Trampoline flags only ever turn on, so this converges in a few rounds.
    const farT = new Uint8Array(n);
    const farF = new Uint8Array(n);
    let addr = new Int32Array(n + 1);
    for (;;) {
      addr = new Int32Array(n + 1);
      let pc = 0;
      for (let i = 0; i < n; i++) {
        addr[i] = pc;
        pc += 1 + farT[i] + farF[i];
      }
      addr[n] = pc;
      let changed = false;
      for (let i = 0; i < n; i++) {
        const ins = this.insns[i];
        if (ins.kind !== 'jcond') continue;
        const from = addr[i] + 1;
        if (!farT[i] && addr[target(i, ins.t)] - from > 255) { farT[i] = 1; changed = true; }
        if (!farF[i] && addr[target(i, ins.f)] - from > 255) { farF[i] = 1; changed = true; }
      }
      if (!changed) break;
    }
    const total = addr[n];
    if (total > BPF_MAXINSNS) {
      throw new PierError(`seccomp: filter needs ${total} BPF instructions, more than the kernel limit of ${BPF_MAXINSNS}`);
    }
    const out = new Uint8Array(total * 8);
    const view = new DataView(out.buffer);
    let pc = 0;
    const put = (code: number, jt: number, jf: number, k: number): void => {
      view.setUint16(pc * 8, code, true);
      view.setUint8(pc * 8 + 2, jt);
      view.setUint8(pc * 8 + 3, jf);
      view.setUint32(pc * 8 + 4, k >>> 0, true);
      pc++;
    };
    for (let i = 0; i < n; i++) {
      const ins = this.insns[i];
      if (ins.kind === 'stmt') {
        put(ins.code, 0, 0, ins.k);
      } else if (ins.kind === 'ja') {
        put(BPF_JMP_JA, 0, 0, addr[target(i, ins.target)] - (addr[i] + 1));
      } else {
        const from = addr[i] + 1;
        const tAddr = addr[target(i, ins.t)];
        const fAddr = addr[target(i, ins.f)];
        const jt = farT[i] ? 0 : tAddr - from;
        const jf = farF[i] ? farT[i] : fAddr - from;
        put(ins.code, jt, jf, ins.k);
        if (farT[i]) put(BPF_JMP_JA, 0, 0, tAddr - pc - 1);
        if (farF[i]) put(BPF_JMP_JA, 0, 0, fAddr - pc - 1);
      }
    }
    return out;
  }
}
