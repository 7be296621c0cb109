/**
 * Linux capability names and numbers (linux/capability.h), and the masks the helper applies.
 */
import { readFileSync } from 'node:fs';
import { PierError } from '../common/errors.ts';

/** Capability names in number order: CAP_NAMES[n] is capability n. */
export const CAP_NAMES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

const BY_NAME = new Map(CAP_NAMES.map((n, i) => [n, i]));

/** The highest capability this table knows (CAP_CHECKPOINT_RESTORE). */
export const CAP_LAST_KNOWN = CAP_NAMES.length - 1;

/** The set `runc spec` puts in a new config.json. */
export const DEFAULT_CAPS: readonly string[] = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** The set docker and containerd give an unprivileged container; for the layers above the runtime. */
export const DOCKER_DEFAULT_CAPS: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Capability number for a name like "CAP_KILL", or undefined. */
export function capNumber(name: string): number | undefined {
  return BY_NAME.get(name);
}

/** Name for a capability number, or undefined when this table does not know it. */
export function capName(n: number): string | undefined {
  return CAP_NAMES[n];
}

let cachedLast: number | undefined;

/**
 * The highest capability the running kernel supports. If /proc does not say (no procfs mounted),
 * assume the kernel knows everything this table does.
 */
export function lastCap(): number {
  if (cachedLast !== undefined) return cachedLast;
  let last = CAP_LAST_KNOWN;
  try {
    const n = Number.parseInt(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim(), 10);
    if (Number.isInteger(n) && n >= 0) last = n;
  } catch {
    // keep the table's maximum
  }
  cachedLast = last;
  return last;
}

/**
 * Bit mask for `names`. An unknown name is an error naming `field`; a cap newer than the kernel
 * (above `last`) is left out silently, as the kernel could not grant it anyway.
 */
export function capMask(names: readonly string[], field: string, last: number = lastCap()): bigint {
  if (!Array.isArray(names)) throw new PierError(`${field} must be a list of capability names`);
  let mask = 0n;
  for (const name of names) {
    const n = typeof name === 'string' ? BY_NAME.get(name) : undefined;
    if (n === undefined) throw new PierError(`unknown capability ${JSON.stringify(name)} in ${field}`);
    if (n <= last) mask |= 1n << BigInt(n);
  }
  return mask;
}

/** Names of the capabilities set in `mask`, in number order (bits this table lacks are named CAP_<n>). */
export function capNames(mask: bigint): string[] {
  const out: string[] = [];
  for (let n = 0; mask >> BigInt(n) !== 0n; n++) {
    if ((mask >> BigInt(n)) & 1n) out.push(CAP_NAMES[n] ?? `CAP_${n}`);
  }
  return out;
}
