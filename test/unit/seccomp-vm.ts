/**
 * A small classic-BPF interpreter for seccomp filters, used by the seccomp tests to run compiled
 * programs against synthetic seccomp_data. It is strict: it rejects what the kernel's checker would
 * (unknown opcodes, out-of-range or misaligned loads, jumps past the end, programs too long or not
 * ending in RET), so a program that passes here has the shape the kernel accepts.
 */
export interface SeccompData { nr: number; arch: number; ip?: bigint; args?: bigint[] }

export interface Insn { code: number; jt: number; jf: number; k: number }

export function decode(program: Uint8Array): Insn[] {
  if (program.length % 8 !== 0) throw new Error(`program length ${program.length} is not a multiple of 8`);
  const v = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const out: Insn[] = [];
  for (let o = 0; o < program.length; o += 8) {
    out.push({ code: v.getUint16(o, true), jt: v.getUint8(o + 2), jf: v.getUint8(o + 3), k: v.getUint32(o + 4, true) });
  }
  return out;
}

/** Static checks mirroring the kernel's bpf_check_classic + seccomp_check_filter. */
export function check(insns: Insn[]): void {
  if (insns.length === 0 || insns.length > 4096) throw new Error(`bad program length ${insns.length}`);
  insns.forEach((ins, pc) => {
    switch (ins.code) {
      case 0x20: // ld [k]
        if (ins.k % 4 !== 0 || ins.k >= 64) throw new Error(`pc ${pc}: bad load offset ${ins.k}`);
        break;
      case 0x54: case 0x06:
        break;
      case 0x05:
        if (pc + 1 + ins.k >= insns.length) throw new Error(`pc ${pc}: ja past end`);
        break;
      case 0x15: case 0x25: case 0x35: case 0x45:
        if (pc + 1 + ins.jt >= insns.length || pc + 1 + ins.jf >= insns.length) throw new Error(`pc ${pc}: jump past end`);
        break;
      default:
        throw new Error(`pc ${pc}: opcode 0x${ins.code.toString(16)} not allowed`);
    }
  });
  if (insns[insns.length - 1].code !== 0x06) throw new Error('program does not end in RET');
}

function dataWord(d: SeccompData, off: number): number {
  if (off === 0) return d.nr >>> 0;
  if (off === 4) return d.arch >>> 0;
  const word = (x: bigint, hi: boolean): number => Number(hi ? (x >> 32n) & 0xffffffffn : x & 0xffffffffn);
  if (off < 16) return word(d.ip ?? 0n, off === 12);
  const i = (off - 16) >> 3;
  return word(d.args?.[i] ?? 0n, (off - 16) % 8 === 4);
}

/** Runs the filter; returns the 32-bit SECCOMP_RET_* value and how many instructions ran. */
export function run(program: Uint8Array, d: SeccompData): { ret: number; steps: number } {
  const insns = decode(program);
  check(insns);
  let a = 0;
  let pc = 0;
  let steps = 0;
  for (;;) {
    const ins = insns[pc];
    if (!ins) throw new Error(`fell off the program at ${pc}`);
    steps++;
    switch (ins.code) {
      case 0x20: a = dataWord(d, ins.k); pc++; break;
      case 0x54: a = (a & ins.k) >>> 0; pc++; break;
      case 0x06: return { ret: ins.k >>> 0, steps };
      case 0x05: pc += 1 + ins.k; break;
      case 0x15: pc += 1 + (a === ins.k ? ins.jt : ins.jf); break;
      case 0x25: pc += 1 + (a > ins.k ? ins.jt : ins.jf); break;
      case 0x35: pc += 1 + (a >= ins.k ? ins.jt : ins.jf); break;
      case 0x45: pc += 1 + ((a & ins.k) !== 0 ? ins.jt : ins.jf); break;
      default: throw new Error(`bad opcode ${ins.code}`);
    }
  }
}

export const AUDIT_X86_64 = 0xc000003e;
export const AUDIT_I386 = 0x40000003;
export const AUDIT_AARCH64 = 0xc00000b7;
export const X32 = 0x40000000;

export const ALLOW = 0x7fff0000;
export const KILL_PROCESS = 0x80000000;
export const KILL_THREAD = 0;
export const TRAP = 0x00030000;
export const LOG = 0x7ffc0000;
export const errno = (e: number): number => (0x00050000 | e) >>> 0;
export const trace = (e: number): number => (0x7ff00000 | e) >>> 0;
