/** The per-process security settings, resolved from the spec into what the helper loads. */
import { constants } from 'node:os';
import { capMask } from '../caps.ts';
import { parseRlimits } from '../rlimits.ts';
import { compileSeccomp } from '../seccomp/index.ts';
import type { Process, Seccomp } from '../spec.ts';

export interface ProcessSecurity {
  capMasks: { bounding: bigint; effective: bigint; permitted: bigint; inheritable: bigint; ambient: bigint };
  rlimits: { resource: number; soft: bigint; hard: bigint }[];
  seccomp?: { flags: number; program: Uint8Array };
}

export function processSecurity(proc: Process, seccomp: Seccomp | undefined): ProcessSecurity {
  const c = proc.capabilities ?? {};
  return {
    capMasks: {
      bounding: capMask(c.bounding ?? [], 'process.capabilities.bounding'),
      effective: capMask(c.effective ?? [], 'process.capabilities.effective'),
      permitted: capMask(c.permitted ?? [], 'process.capabilities.permitted'),
      inheritable: capMask(c.inheritable ?? [], 'process.capabilities.inheritable'),
      ambient: capMask(c.ambient ?? [], 'process.capabilities.ambient'),
    },
    rlimits: parseRlimits(proc.rlimits ?? []),
    seccomp: seccomp ? compileSeccomp(seccomp) : undefined,
  };
}

/** A shell-style exit status from a child's exit: the code, or 128 + the signal number. */
export function exitStatus(code: number | null, signal: string | null): number {
  if (code !== null) return code;
  const n = signal ? (constants.signals as Record<string, number>)[signal] : undefined;
  return n ? 128 + n : 1;
}
