/** Kernel constants the plans carry as decimal numbers (linux/sched.h, linux/mount.h). */
export const CLONE = {
  NEWTIME: 0x80,
  NEWNS: 0x20000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  MANDLOCK: 64,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  SILENT: 32768,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
  LAZYTIME: 1 << 25,
} as const;

/** Spec namespace names → the helper's (kernel /proc/<pid>/ns) names and clone flags. */
export const NAMESPACES: Record<string, { kernel: string; flag: number }> = {
  user: { kernel: 'user', flag: CLONE.NEWUSER },
  mount: { kernel: 'mnt', flag: CLONE.NEWNS },
  pid: { kernel: 'pid', flag: CLONE.NEWPID },
  network: { kernel: 'net', flag: CLONE.NEWNET },
  ipc: { kernel: 'ipc', flag: CLONE.NEWIPC },
  uts: { kernel: 'uts', flag: CLONE.NEWUTS },
  cgroup: { kernel: 'cgroup', flag: CLONE.NEWCGROUP },
  time: { kernel: 'time', flag: CLONE.NEWTIME },
};
/** Kernel names are accepted too (`mnt`, `net`). */
for (const [k, v] of Object.entries({ ...NAMESPACES })) NAMESPACES[v.kernel] ??= NAMESPACES[k];

/** Join order: the user namespace first (it grants the rights to join the rest), mount last
 * (joining it changes what later host paths would mean; the helper pre-opens them anyway). */
export const JOIN_ORDER = ['user', 'ipc', 'uts', 'net', 'pid', 'cgroup', 'time', 'mnt'];
