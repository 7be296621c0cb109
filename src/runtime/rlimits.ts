/**
 * process.rlimits: RLIMIT_* names to resource numbers (Linux, x86_64 values from asm-generic/resource.h),
 * checked and turned into the (resource, soft, hard) triples the helper passes to setrlimit.
 */
import { PierError } from '../common/errors.ts';
import type { Rlimit } from './spec.ts';

export const RLIMIT_RESOURCES: Readonly<Record<string, number>> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

/** RLIM_INFINITY: the all-ones 64-bit value. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

export interface ParsedRlimit { resource: number; soft: bigint; hard: bigint }

/**
 * A limit value. JSON can't carry 2^64-1 exactly: it parses to 2^64, so anything at or above 2^64
 * means RLIM_INFINITY. Below that, large values are only approximate, which is harmless for limits.
 */
function limitValue(v: unknown, field: string): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n) throw new PierError(`${field} must not be negative, got ${v}`);
    return v > RLIM_INFINITY ? RLIM_INFINITY : v;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new PierError(`${field} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  const b = BigInt(v);
  return b > RLIM_INFINITY ? RLIM_INFINITY : b;
}

export function parseRlimits(list: readonly Rlimit[]): ParsedRlimit[] {
  if (!Array.isArray(list)) throw new PierError('process.rlimits must be a list');
  const seen = new Set<string>();
  return list.map((r, i) => {
    const field = `process.rlimits[${i}]`;
    if (r === null || typeof r !== 'object') throw new PierError(`${field} must be an object`);
    if (typeof r.type !== 'string' || !Object.hasOwn(RLIMIT_RESOURCES, r.type)) {
      throw new PierError(`${field}.type: unknown rlimit type ${JSON.stringify(r.type)}`);
    }
    if (seen.has(r.type)) throw new PierError(`${field}.type: ${r.type} is given more than once`);
    seen.add(r.type);
    const soft = limitValue(r.soft, `${field}.soft`);
    const hard = limitValue(r.hard, `${field}.hard`);
    if (soft > hard) throw new PierError(`${field}: ${r.type} soft limit ${soft} is above its hard limit ${hard}`);
    return { resource: RLIMIT_RESOURCES[r.type], soft, hard };
  });
}
