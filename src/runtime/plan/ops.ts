/**
 * Plan ops for pier-helper (see native/PROTOCOL.md) and their wire encoding.
 * A plan is an ordered list of ops; TypeScript builds it, the C helper executes it.
 */
export const Op = {
  CGROUP_PROCS: 1,
  SETNS: 2,
  CLONE: 3,
  UID_MAP: 4,
  GID_MAP: 5,
  SETGROUPS: 6,
  UNSHARE: 11,
  SETROOT: 12,
  MOUNT: 13,
  MKDIR: 14,
  MKNOD: 15,
  SYMLINK: 16,
  WRITE: 17,
  PIVOT_ROOT: 18,
  CHROOT: 19,
  SETHOSTNAME: 20,
  SETDOMAINNAME: 21,
  KEYRING: 22,
  SYNC_WAIT: 23,
  SYNC_READY: 24,
  HOOK: 25,
  FIFO_OPEN: 26,
  FIFO_WAIT: 27,
  CONSOLE_CONNECT: 28,
  CONSOLE_SETUP: 29,
  RLIMIT: 30,
  CAPS_BOUNDING: 31,
  SETUSER: 32,
  CAPS: 33,
  UMASK: 34,
  NO_NEW_PRIVS: 35,
  SECCOMP: 36,
  CHDIR: 37,
  ENV: 38,
  EXEC: 39,
  RESOLVE_EXEC: 40,
  CLOSE_FDS: 41,
  MASK: 42,
  READONLY: 43,
  SETSID: 44,
  REMOUNT_CLEAR: 45,
} as const;

export type OpName = keyof typeof Op;
export type Arg = string | number | bigint | Uint8Array;
export interface PlanOp { op: OpName; args: Arg[] }

/** Build an op record; numbers become decimal text as the protocol says. */
export function op(name: OpName, ...args: Arg[]): PlanOp {
  return { op: name, args };
}

function argBytes(a: Arg): Uint8Array {
  if (a instanceof Uint8Array) return a;
  return Buffer.from(typeof a === 'string' ? a : a.toString(10));
}

/**
 * Encode a plan: u32 LE length, then records of u16 op, u16 argc, (u32 len, bytes)*.
 * One allocation for the whole plan: a create plan has ~80 records and this runs on every create.
 */
export function encodePlan(ops: PlanOp[]): Buffer {
  const args = ops.map((o) => o.args.map(argBytes));
  let size = 0;
  for (const list of args) {
    size += 4;
    for (const b of list) size += 4 + b.length;
  }
  const out = Buffer.allocUnsafe(4 + size);
  let at = out.writeUInt32LE(size, 0);
  ops.forEach((o, i) => {
    at = out.writeUInt16LE(Op[o.op], at);
    at = out.writeUInt16LE(args[i].length, at);
    for (const b of args[i]) {
      at = out.writeUInt32LE(b.length, at);
      out.set(b, at);
      at += b.length;
    }
  });
  return out;
}

/** Human-readable form of a plan, for --debug and tests. */
export function describePlan(ops: PlanOp[]): string {
  return ops
    .map((o) => [o.op, ...o.args.map((a) => (a instanceof Uint8Array ? `<${a.length} bytes>` : JSON.stringify(String(a))))].join(' '))
    .join('\n');
}
