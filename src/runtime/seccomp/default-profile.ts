/**
 * The profile `pier-runtime spec` writes: allow a list of ordinary syscalls, EPERM for everything else.
 *
 * Written for pier from well-known facts about the docker/containerd defaults. Left out of the allow
 * list (so EPERM) are syscalls that reach state the container's namespaces do not isolate or that
 * widen the kernel's attack surface: kernel modules and kexec, mounts and pivot_root, swap, reboot,
 * system clock setting, the kernel keyring, bpf, perf_event_open, userfaultfd, io_uring,
 * open_by_handle_at, acct, quotactl, setns, iopl/ioperm, syslog, NUMA policy, and obsolete calls.
 * A few are allowed only with safe arguments: clone/unshare without namespace flags, personality
 * with the common personas, socket with any family but AF_VSOCK (not namespaced). clone3 gets
 * ENOSYS because its flags sit in memory seccomp cannot read; libc then falls back to clone.
 * ptrace and process_vm_* are allowed: since Linux 4.8 a traced process cannot escape seccomp, and
 * without CAP_SYS_PTRACE they only reach the container's own processes.
 */
import type { Seccomp, SeccompSyscall } from '../spec.ts';

const ENOSYS = 38;
const EPERM = 1;

// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
// clone() reuses the low byte for the exit signal, so CLONE_NEWTIME (0x80) is only checked for unshare.
const CLONE_NEWTIME = 0x00000080;
const AF_VSOCK = 40;
// PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff which only queries.
const SAFE_PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Syscalls the default profile allows without conditions. Names a given arch lacks are skipped. */
export const DEFAULT_ALLOWED_SYSCALLS: readonly string[] = [
  // files and directories
  'access', 'chdir', 'chmod', 'chown', 'chown32', 'chroot', 'close', 'close_range', 'copy_file_range', 'creat',
  'dup', 'dup2', 'dup3', 'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64', 'fallocate', 'fanotify_mark',
  'fchdir', 'fchmod', 'fchmodat', 'fchmodat2', 'fchown', 'fchown32', 'fchownat', 'fcntl', 'fcntl64', 'fdatasync',
  'fgetxattr', 'file_getattr', 'file_setattr', 'flistxattr', 'flock', 'fremovexattr', 'fsetxattr', 'fstat',
  'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64', 'fsync', 'ftruncate', 'ftruncate64', 'futimesat', 'getcwd',
  'getdents', 'getdents64', 'getxattr', 'getxattrat', 'inotify_add_watch', 'inotify_init', 'inotify_init1',
  'inotify_rm_watch', 'ioctl', 'lchown', 'lchown32', 'lgetxattr', 'link', 'linkat', 'listxattr', 'listxattrat',
  'llistxattr', '_llseek', 'lremovexattr', 'lseek', 'lsetxattr', 'lstat', 'lstat64', 'memfd_create', 'mkdir',
  'mkdirat', 'mknod', 'mknodat', 'newfstatat', 'open', 'openat', 'openat2', 'pipe', 'pipe2', 'pread64', 'preadv',
  'preadv2', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat', 'readv',
  'removexattr', 'removexattrat', 'rename', 'renameat', 'renameat2', 'rmdir', 'sendfile', 'sendfile64',
  'setxattr', 'setxattrat', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat',
  'sync', 'sync_file_range', 'syncfs', 'tee', 'truncate', 'truncate64', 'umask', 'unlink', 'unlinkat', 'utime',
  'utimensat', 'utimensat_time64', 'utimes', 'vmsplice', 'write', 'writev', 'cachestat',
  // asynchronous I/O, polling, event fds
  'io_cancel', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'io_setup', 'io_submit',
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait',
  'epoll_wait_old', 'eventfd', 'eventfd2', 'poll', 'ppoll', 'ppoll_time64', 'pselect6', 'pselect6_time64',
  'select', '_newselect', 'signalfd', 'signalfd4', 'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64',
  'timerfd_settime', 'timerfd_settime64',
  // memory
  'brk', 'madvise', 'map_shadow_stack', 'membarrier', 'mincore', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2',
  'mprotect', 'mremap', 'mseal', 'msync', 'munlock', 'munlockall', 'munmap', 'pkey_alloc', 'pkey_free',
  'pkey_mprotect', 'process_madvise', 'remap_file_pages',
  // processes, threads, credentials, scheduling
  'arch_prctl', 'capget', 'capset', 'execve', 'execveat', 'exit', 'exit_group', 'fork', 'vfork', 'getpid',
  'getppid', 'getpgid', 'getpgrp', 'getsid', 'gettid', 'setsid', 'setpgid', 'getpriority', 'setpriority',
  'getrlimit', 'setrlimit', 'prlimit64', 'ugetrlimit', 'getrusage', 'getuid', 'geteuid', 'getgid', 'getegid',
  'getuid32', 'geteuid32', 'getgid32', 'getegid32', 'getresuid', 'getresgid', 'getresuid32', 'getresgid32',
  'getgroups', 'getgroups32', 'setuid', 'setgid', 'setuid32', 'setgid32', 'setreuid', 'setregid', 'setreuid32',
  'setregid32', 'setresuid', 'setresgid', 'setresuid32', 'setresgid32', 'setfsuid', 'setfsgid', 'setfsuid32',
  'setfsgid32', 'setgroups', 'setgroups32', 'kill', 'tkill', 'tgkill', 'pidfd_open', 'pidfd_send_signal',
  'pidfd_getfd', 'prctl', 'rseq', 'set_robust_list', 'get_robust_list', 'set_tid_address', 'set_thread_area',
  'get_thread_area', 'wait4', 'waitid', 'waitpid', 'sched_getaffinity', 'sched_setaffinity', 'sched_getattr',
  'sched_setattr', 'sched_getparam', 'sched_setparam', 'sched_getscheduler', 'sched_setscheduler',
  'sched_get_priority_max', 'sched_get_priority_min', 'sched_rr_get_interval', 'sched_rr_get_interval_time64',
  'sched_yield', 'getcpu', 'ioprio_get', 'ioprio_set', 'uname', 'sysinfo', 'times', 'restart_syscall', 'pause',
  'alarm', 'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'landlock_add_rule',
  'landlock_create_ruleset', 'landlock_restrict_self', 'seccomp', 'futex', 'futex_time64', 'futex_waitv',
  'futex_wake', 'futex_wait', 'futex_requeue', 'getrandom', 'sethostname', 'setdomainname',
  // signals
  'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend',
  'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo', 'sigaction', 'sigaltstack', 'signal',
  'sigpending', 'sigprocmask', 'sigreturn', 'sigsuspend',
  // time (reading clocks and sleeping; setting the clock is left out)
  'adjtimex', 'clock_getres', 'clock_getres_time64', 'clock_gettime', 'clock_gettime64', 'clock_nanosleep',
  'clock_nanosleep_time64', 'gettimeofday', 'nanosleep', 'time', 'timer_create', 'timer_delete',
  'timer_getoverrun', 'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64', 'getitimer',
  'setitimer',
  // sockets
  'accept', 'accept4', 'bind', 'connect', 'getpeername', 'getsockname', 'getsockopt', 'setsockopt', 'listen',
  'recvfrom', 'recvmsg', 'recvmmsg', 'recvmmsg_time64', 'sendmsg', 'sendmmsg', 'sendto', 'shutdown',
  'socketpair', 'socketcall',
  // System V and POSIX IPC (namespaced by the IPC namespace)
  'ipc', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'semctl', 'semget', 'semop', 'semtimedop',
  'semtimedop_time64', 'shmat', 'shmctl', 'shmdt', 'shmget', 'mq_getsetattr', 'mq_notify', 'mq_open',
  'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend', 'mq_timedsend_time64', 'mq_unlink',
];

/** A fresh copy of the default profile (callers may edit it). */
export function defaultSeccompProfile(): Seccomp {
  const syscalls: SeccompSyscall[] = [
    { names: [...DEFAULT_ALLOWED_SYSCALLS], action: 'SCMP_ACT_ALLOW' },
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
    {
      names: ['unshare'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS | CLONE_NEWTIME, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] },
    ...SAFE_PERSONAS.map((p): SeccompSyscall => ({
      names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: p, op: 'SCMP_CMP_EQ' }],
    })),
  ];
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls,
  };
}
