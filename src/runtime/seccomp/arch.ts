/**
 * The architectures a filter can cover, with their AUDIT_ARCH_* value (seccomp_data.arch) and
 * syscall-name lookup. Only the x86 family has tables; other libseccomp names are refused clearly.
 */
import { PierError } from '../../common/errors.ts';
import { SYSCALLS_X86_64 } from './table-x86_64.ts';
import { SYSCALLS_I386 } from './table-i386.ts';
import { SYSCALLS_X32 } from './table-x32.ts';
import { SYSCALLS_NEWER_COMMON, SYSCALLS_NEWER_X86_64_ONLY } from './table-newer.ts';

/** Set in seccomp_data.nr for syscalls made through the x32 ABI. */
export const X32_SYSCALL_BIT = 0x40000000;

// linux/audit.h: EM_* machine | __AUDIT_ARCH_64BIT (0x80000000) | __AUDIT_ARCH_LE (0x40000000).
export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;

export interface ArchSection {
  readonly name: string;
  readonly auditArch: number;
  /** seccomp_data.nr for `name` on this arch (with the x32 bit for x32), or undefined if it has none. */
  resolve(name: string): number | undefined;
}

function lookup(...tables: Readonly<Record<string, number>>[]): (name: string) => number | undefined {
  return (name) => {
    for (const t of tables) if (Object.hasOwn(t, name)) return t[name];
    return undefined;
  };
}

const find64 = lookup(SYSCALLS_X86_64, SYSCALLS_NEWER_COMMON, SYSCALLS_NEWER_X86_64_ONLY);
const findX32 = lookup(SYSCALLS_X32, SYSCALLS_NEWER_COMMON);
const find386 = lookup(SYSCALLS_I386, SYSCALLS_NEWER_COMMON);

export const ARCH_SECTIONS = {
  SCMP_ARCH_X86_64: { name: 'SCMP_ARCH_X86_64', auditArch: AUDIT_ARCH_X86_64, resolve: find64 },
  SCMP_ARCH_X32: {
    name: 'SCMP_ARCH_X32',
    auditArch: AUDIT_ARCH_X86_64,
    resolve: (name: string) => {
      const nr = findX32(name);
      return nr === undefined ? undefined : (nr | X32_SYSCALL_BIT) >>> 0;
    },
  },
  SCMP_ARCH_X86: { name: 'SCMP_ARCH_X86', auditArch: AUDIT_ARCH_I386, resolve: find386 },
} as const satisfies Record<string, ArchSection>;

/** Architecture names compileSeccomp accepts. */
export const SECCOMP_ARCHES: readonly string[] = Object.keys(ARCH_SECTIONS);

/** libseccomp architecture names pier knows of but has no syscall table for. */
const WITHOUT_TABLE = new Set([
  'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM', 'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32',
  'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64',
  'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC', 'SCMP_ARCH_PARISC64',
  'SCMP_ARCH_RISCV64', 'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
]);

/**
 * The sections a profile's `architectures` asks for. The native arch (x86_64) is always included,
 * as libseccomp does; the filter is built for an x86_64 host.
 */
export function architectureSections(architectures: unknown): ArchSection[] {
  const out: ArchSection[] = [ARCH_SECTIONS.SCMP_ARCH_X86_64];
  if (architectures === undefined || architectures === null) return out;
  if (!Array.isArray(architectures)) throw new PierError('linux.seccomp.architectures must be a list');
  architectures.forEach((a: unknown, i) => {
    const field = `linux.seccomp.architectures[${i}]`;
    if (typeof a !== 'string') throw new PierError(`${field} must be a string`);
    if (Object.hasOwn(ARCH_SECTIONS, a)) {
      const s: ArchSection = ARCH_SECTIONS[a as keyof typeof ARCH_SECTIONS];
      if (!out.includes(s)) out.push(s);
    } else if (WITHOUT_TABLE.has(a)) {
      throw new PierError(`${field}: architecture "${a}" is not supported by pier-runtime (it has syscall tables for SCMP_ARCH_X86_64, SCMP_ARCH_X86 and SCMP_ARCH_X32 only)`);
    } else {
      throw new PierError(`${field}: unknown architecture "${a}"`);
    }
  });
  return out;
}
