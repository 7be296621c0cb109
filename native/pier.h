/* pier-helper: shared declarations. See PROTOCOL.md for the plan format. */
#ifndef PIER_H
#define PIER_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

enum {
  OP_CGROUP_PROCS = 1, OP_SETNS = 2, OP_CLONE = 3, OP_UID_MAP = 4, OP_GID_MAP = 5, OP_SETGROUPS = 6,
  OP_UNSHARE = 11, OP_SETROOT, OP_MOUNT, OP_MKDIR, OP_MKNOD, OP_SYMLINK, OP_WRITE, OP_PIVOT_ROOT,
  OP_CHROOT, OP_SETHOSTNAME, OP_SETDOMAINNAME, OP_KEYRING, OP_SYNC_WAIT, OP_SYNC_READY, OP_HOOK,
  OP_FIFO_OPEN, OP_FIFO_WAIT, OP_CONSOLE_CONNECT, OP_CONSOLE_SETUP, OP_RLIMIT, OP_CAPS_BOUNDING,
  OP_SETUSER, OP_CAPS, OP_UMASK, OP_NO_NEW_PRIVS, OP_SECCOMP, OP_CHDIR, OP_ENV, OP_EXEC,
  OP_RESOLVE_EXEC, OP_CLOSE_FDS, OP_MASK, OP_READONLY, OP_SETSID, OP_REMOUNT_CLEAR,
};

struct arg { char *s; uint32_t len; }; /* s is NUL-terminated; len excludes the NUL */
struct op { uint16_t code; uint16_t argc; struct arg *a; };

extern int ctlfd; /* helper → Node lines */
extern int infd;  /* Node → helper: the plan, then state/go lines (a separate socket, so a write
                     to a dead helper can never discard an error line Node has yet to read) */

/* Report `error <what>: <strerror(errno)>` on ctlfd and exit 1. */
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report `error <what>` on ctlfd and exit 1. */
_Noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ctl_write(const char *s, size_t n);
unsigned long long num(const struct op *o, int i);
int write_all(int fd, const void *buf, size_t n);

/* cloned.c */
void ensure_sealed(char **argv);

/* mount.c */
void mnt_setroot(const char *path);
void mnt_mount(const struct op *o);
void mnt_mkdir(const char *path, mode_t mode);
void mnt_mknod(const struct op *o);
void mnt_symlink(const char *target, const char *linkpath);
void mnt_write(const char *path, const char *data, size_t len);
void mnt_mask(const char *path);
void mnt_readonly(const char *path);
void mnt_remount_clear(const char *path, unsigned long clear);
void mnt_pivot(const char *path);
void mnt_chroot(const char *path, int jail_only);
void mnt_bind_file(const char *src, const char *dst);

/* process.c */
void proc_rlimit(const struct op *o);
void proc_caps_bounding(unsigned long long mask);
void proc_setuser(const struct op *o);
void proc_caps(const struct op *o);
void proc_seccomp(const struct op *o);
void proc_keyring(const char *name);
void proc_env(const char *kv);
void proc_resolve_exec(const char *name);
_Noreturn void proc_exec(const struct op *o);

/* console.c */
extern int console_sock;   /* connected console socket, or -1 */
extern int relay_sock;     /* parent end of the relay socketpair, or -1 */
void console_connect(const char *path);
void console_setup(const struct op *o);
int relay_run(pid_t child, int sigfd); /* returns the child's wait status */

/* hook.c */
void hook_sync_wait(void);
void hook_run(const struct op *o);

#endif
