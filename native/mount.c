/* Filesystem ops: in-root path resolution (openat2 RESOLVE_IN_ROOT), mounts, device nodes,
 * masking, and the switch to the new root. */
#include "pier.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* -1: paths are plain paths in the current root; else the rootfs fd they are resolved in. */
static int rootfd = -1;

/* Open path; in-root when a root is set, so rootfs symlinks cannot point outside it. */
static int resolve(const char *path, int flags) {
  if (rootfd < 0) return open(path, flags | O_CLOEXEC);
  struct open_how how = {
    .flags = (uint64_t)(flags | O_CLOEXEC),
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  int fd;
  do fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how); while (fd < 0 && errno == EAGAIN);
  return fd;
}

static char *fdpath(int fd, char buf[static 32]) {
  snprintf(buf, 32, "/proc/self/fd/%d", fd);
  return buf;
}

/* Open the parent directory of path (in-root) and return it; *base points at the last component. */
static int open_parent(const char *path, char *copy, size_t size, const char **base) {
  snprintf(copy, size, "%s", path);
  size_t n = strlen(copy);
  while (n > 1 && copy[n - 1] == '/') copy[--n] = 0;
  char *slash = strrchr(copy, '/');
  if (!slash) { *base = copy; return resolve(".", O_PATH | O_DIRECTORY); }
  *base = slash + 1;
  if (slash == copy) return resolve("/", O_PATH | O_DIRECTORY);
  *slash = 0;
  mnt_mkdir(copy, 0755);
  int fd = resolve(copy, O_PATH | O_DIRECTORY);
  *slash = '/';
  return fd;
}

void mnt_setroot(const char *path) {
  if (rootfd >= 0) close(rootfd);
  if ((rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) die("open root %s", path);
}

/* mkdir -p; each missing component is created in its already resolved parent. */
void mnt_mkdir(const char *path, mode_t mode) {
  char buf[4096];
  if (path[0] != '/') fail("mkdir %s: path must be absolute", path);
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) fail("mkdir %s: path too long", path);
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != 0) continue;
    char saved = *p;
    *p = 0;
    int fd = resolve(buf, O_PATH | O_DIRECTORY);
    if (fd < 0 && errno == ENOENT) {
      char *slash = strrchr(buf, '/');
      *slash = 0;
      int parent = resolve(slash == buf ? "/" : buf, O_PATH | O_DIRECTORY);
      *slash = '/';
      if (parent < 0) die("mkdir %s", buf);
      if (mkdirat(parent, slash + 1, mode) < 0 && errno != EEXIST) die("mkdir %s", buf);
      close(parent);
      fd = resolve(buf, O_PATH | O_DIRECTORY);
    }
    if (fd < 0) die("mkdir %s", buf);
    close(fd);
    *p = saved;
    if (!saved) break;
  }
}

static void make_file(const char *path) {
  char copy[4096];
  const char *base;
  int dir = open_parent(path, copy, sizeof copy, &base);
  if (dir < 0) die("create %s", path);
  int fd = openat(dir, base, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0 && errno != EEXIST) die("create %s", path);
  if (fd >= 0) close(fd);
  close(dir);
}

#ifndef ST_NOSYMFOLLOW
#define ST_NOSYMFOLLOW 0x2000 /* the kernel's statfs bit (linux/statfs.h); glibc 2.36 does not name it */
#endif

/* The MS_* per-mount flags statvfs reports. */
static unsigned long mount_flags(const struct statvfs *sv) {
  static const struct { unsigned long st, ms; } map[] = {
    {ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV}, {ST_NOEXEC, MS_NOEXEC}, {ST_NOATIME, MS_NOATIME},
    {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}, {ST_RDONLY, MS_RDONLY},
    {ST_NOSYMFOLLOW, MS_NOSYMFOLLOW},
  };
  unsigned long f = 0;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) if (sv->f_flag & map[i].st) f |= map[i].ms;
  return f;
}

/* Flags a remount must keep because the kernel locks them (e.g. in a user namespace). */
static unsigned long locked_flags(const char *target) {
  struct statvfs sv;
  if (statvfs(target, &sv) < 0) return 0;
  return mount_flags(&sv);
}

static void do_mount(const char *src, const char *dst, const char *shown, const char *fstype,
                     unsigned long flags, const char *data) {
  if (mount(src, dst, fstype, flags, data) == 0) return;
  if (errno == EPERM && (flags & MS_REMOUNT)) {
    unsigned long keep = locked_flags(dst);
    /* never turn a requested read-write remount into read-only because the mount was ro */
    if (!(flags & MS_RDONLY)) keep &= ~(unsigned long)MS_RDONLY;
    if ((keep | flags) != flags && mount(src, dst, fstype, flags | keep, data) == 0) return;
    errno = EPERM;
  }
  die("mount %s on %s", *src ? src : fstype && *fstype ? fstype : "(remount)", shown);
}

/*
 * A mount whose target resolved onto procfs replaces what the runtime itself writes there and undoes
 * masked paths (CVE-2019-16884: a volume over /proc/self/attr beat AppArmor; CVE-2019-19921: a
 * symlink the image or an earlier run planted led a volume onto /proc). Only the files lxcfs-style
 * setups bind over, named by the spec itself, may be; the same list runc allows.
 */
static void check_not_in_proc(int fd, const char *target) {
  static const char *allowed[] = {
      "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
      "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
  };
  struct statfs sf;
  if (fstatfs(fd, &sf) < 0) die("statfs %s", target);
  if (sf.f_type != PROC_SUPER_MAGIC) return;
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) if (!strcmp(target, allowed[i])) return;
  fail("mount destination %s is inside /proc (where it leads in the container): not allowed", target);
}

void mnt_mount(const struct op *o) {
  const char *src = o->a[0].s, *target = o->a[1].s, *fstype = o->a[2].s, *data = o->a[4].s, *mk = o->a[5].s;
  unsigned long flags = (unsigned long)num(o, 3);
  if (rootfd < 0) {
    if (!strcmp(mk, "dir")) mnt_mkdir(target, 0755);
    else if (!strcmp(mk, "file")) make_file(target);
    do_mount(src, target, target, *fstype ? fstype : NULL, flags, *data ? data : NULL);
    return;
  }
  int fd = resolve(target, O_PATH);
  if (fd < 0 && errno == ENOENT && *mk) {
    if (!strcmp(mk, "dir")) mnt_mkdir(target, 0755);
    else make_file(target);
    fd = resolve(target, O_PATH);
  }
  if (fd < 0) die("mount %s on %s", *src ? src : fstype, target);
  if (strcmp(fstype, "proc") != 0 && !(flags & MS_REMOUNT)) check_not_in_proc(fd, target);
  char p[32];
  do_mount(src, fdpath(fd, p), target, *fstype ? fstype : NULL, flags, *data ? data : NULL);
  close(fd);
}

void mnt_mknod(const struct op *o) {
  const char *path = o->a[0].s;
  char t = o->a[1].s[0], copy[4096];
  mode_t mode = (mode_t)strtoul(o->a[4].s, NULL, 8) & 07777;
  mode_t type = t == 'b' ? S_IFBLK : t == 'p' ? S_IFIFO : (t == 'c' || t == 'u') ? S_IFCHR : 0;
  if (!type) fail("mknod %s: unknown device type %s", path, o->a[1].s);
  const char *base;
  int dir = open_parent(path, copy, sizeof copy, &base);
  if (dir < 0) die("mknod %s", path);
  if (unlinkat(dir, base, 0) < 0 && errno != ENOENT) die("mknod %s: remove existing", path);
  if (mknodat(dir, base, type | mode, makedev(num(o, 2), num(o, 3))) < 0) die("mknod %s", path);
  if (fchownat(dir, base, (uid_t)num(o, 5), (gid_t)num(o, 6), AT_SYMLINK_NOFOLLOW) < 0) die("chown %s", path);
  if (fchmodat(dir, base, mode, 0) < 0) die("chmod %s", path);
  close(dir);
}

void mnt_symlink(const char *target, const char *linkpath) {
  char copy[4096];
  const char *base;
  int dir = open_parent(linkpath, copy, sizeof copy, &base);
  if (dir < 0) die("symlink %s", linkpath);
  if (symlinkat(target, dir, base) < 0 && errno != EEXIST) die("symlink %s -> %s", linkpath, target);
  close(dir);
}

void mnt_write(const char *path, const char *data, size_t len) {
  int fd = resolve(path, O_WRONLY);
  if (fd < 0 || write_all(fd, data, len) < 0) die("write %s", path);
  close(fd);
}

void mnt_mask(const char *path) {
  int fd = resolve(path, O_PATH);
  if (fd < 0 && errno == ENOENT) return;
  if (fd < 0) die("mask %s", path);
  struct stat st;
  char p[32];
  if (fstat(fd, &st) < 0) die("mask %s", path);
  if (S_ISDIR(st.st_mode)) do_mount("tmpfs", fdpath(fd, p), path, "tmpfs", MS_RDONLY, NULL);
  else do_mount("/dev/null", fdpath(fd, p), path, NULL, MS_BIND, NULL);
  close(fd);
}

void mnt_readonly(const char *path) {
  int fd = resolve(path, O_PATH);
  if (fd < 0 && errno == ENOENT) return;
  if (fd < 0) die("readonly %s", path);
  char p[32];
  do_mount(fdpath(fd, p), fdpath(fd, p), path, NULL, MS_BIND | MS_REC, NULL);
  close(fd);
  /* reopen: the old fd still names the covered mount, not the new bind */
  if ((fd = resolve(path, O_PATH)) < 0) die("readonly %s", path);
  do_mount("", fdpath(fd, p), path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
  close(fd);
}

/* REMOUNT_CLEAR: the mount at path keeps every per-mount flag it has but those in `clear`. pier's
 * snapshotter mounts a rootfs nosuid,nodev so that host users gain nothing from what a container
 * leaves in it; the container's own bind of it (in its mount namespace, never the host's) gets
 * set-id and devices back. EPERM means the flags are locked (the mount comes from a more privileged
 * user namespace): the mount stays as it is, as any bind of it would under runc. */
void mnt_remount_clear(const char *path, unsigned long clear) {
  int fd = resolve(path, O_PATH);
  struct statvfs sv;
  if (fd < 0 || fstatvfs(fd, &sv) < 0) die("remount %s", path);
  char p[32];
  fdpath(fd, p);
  unsigned long cur = mount_flags(&sv);
  if (cur & clear) {
    unsigned long flags = MS_BIND | MS_REMOUNT | (cur & ~clear);
    /* no atime flag would mean relatime to the kernel; keep a strictatime mount strict */
    if (!(cur & (MS_NOATIME | MS_RELATIME))) flags |= MS_STRICTATIME;
    if (mount("", p, NULL, flags, NULL) < 0 && errno != EPERM) die("remount %s", path);
  }
  close(fd);
}

void mnt_pivot(const char *path) {
  int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fchdir(fd) < 0) die("pivot_root %s", path);
  close(fd);
  if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root %s", path);
  /* keep the detach of the old root from propagating back to the host */
  if (mount("", ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) die("make old root rslave");
  if (umount2(".", MNT_DETACH) < 0) die("unmount old root");
  if (chdir("/") < 0) die("chdir /");
  if (rootfd >= 0) close(rootfd);
  rootfd = -1;
}

void mnt_chroot(const char *path, int jail_only) {
  if (chdir(path) < 0) die("chdir %s", path);
  /* jail_only: no mount namespace of our own, so moving a mount would move the host's */
  if (!jail_only && mount(path, "/", NULL, MS_MOVE, NULL) < 0) die("move %s to /", path);
  if (chroot(".") < 0) die("chroot %s", path);
  if (chdir("/") < 0) die("chdir /");
  if (rootfd >= 0) close(rootfd);
  rootfd = -1;
}

void mnt_bind_file(const char *src, const char *dst) {
  make_file(dst);
  int fd = resolve(dst, O_PATH | O_NOFOLLOW);
  char p[32];
  if (fd < 0) die("mount %s on %s", src, dst);
  do_mount(src, fdpath(fd, p), dst, NULL, MS_BIND, NULL);
  close(fd);
}
