/* pier-helper: reads a plan from the control socket, runs the parent ops, clones the container
 * process, synchronises with it and either exits (detach) or waits for it (wait). */
#include "pier.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int ctlfd = -1;
int infd = -1;
static int exec_fifo = -1; /* O_PATH fd of exec.fifo, opened by FIFO_OPEN */
static int self_fds = -1;  /* /proc/self/fd of the child, opened while the host's /proc is still in view */

int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

void ctl_write(const char *s, size_t n) {
  /* MSG_NOSIGNAL: Node may have closed its end after `ready`; then stderr is all we have */
  while (n > 0) {
    ssize_t w = send(ctlfd, s, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { (void)write_all(2, s, n); return; }
    s += w;
    n -= (size_t)w;
  }
}

static _Noreturn void vreport(int err, const char *fmt, va_list ap) {
  char line[4096];
  int n = snprintf(line, sizeof line, "error ");
  n += vsnprintf(line + n, sizeof line - (size_t)n - 2, fmt, ap);
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  if (err) n += snprintf(line + n, sizeof line - (size_t)n - 1, ": %s", strerror(err));
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  for (int i = 0; i < n; i++) if (line[i] == '\n') line[i] = ' '; /* one line, always */
  line[n++] = '\n';
  ctl_write(line, (size_t)n);
  _exit(1);
}

void die(const char *fmt, ...) {
  int err = errno;
  va_list ap;
  va_start(ap, fmt);
  vreport(err ? err : EINVAL, fmt, ap);
}

void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(0, fmt, ap);
}

unsigned long long num(const struct op *o, int i) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(o->a[i].s, &end, 10);
  if (errno || end == o->a[i].s || *end) fail("plan: op %u argument %d is not a number: %s", o->code, i, o->a[i].s);
  return v;
}

static void read_exact(void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(infd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("read plan");
    if (r == 0) fail("read plan: unexpected end of input");
    p += r;
    n -= (size_t)r;
  }
}

static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Parse the plan into ops whose arguments are NUL-terminated copies. */
static struct op *read_plan(size_t *nops) {
  unsigned char hdr[4];
  read_exact(hdr, 4);
  uint32_t size = le32(hdr);
  if (size > (64u << 20)) fail("plan: too large (%u bytes)", size);
  unsigned char *buf = malloc(size ? size : 1);
  if (!buf) die("plan");
  read_exact(buf, size);
  size_t cap = 64, n = 0, off = 0;
  struct op *ops = malloc(cap * sizeof *ops);
  if (!ops) die("plan");
  while (off < size) {
    if (size - off < 4) fail("plan: truncated record");
    if (n == cap && !(ops = realloc(ops, (cap *= 2) * sizeof *ops))) die("plan");
    struct op *o = &ops[n++];
    o->code = (uint16_t)(buf[off] | buf[off + 1] << 8);
    o->argc = (uint16_t)(buf[off + 2] | buf[off + 3] << 8);
    off += 4;
    o->a = calloc(o->argc + 1u, sizeof *o->a);
    if (!o->a) die("plan");
    for (unsigned i = 0; i < o->argc; i++) {
      if (size - off < 4) fail("plan: truncated argument");
      uint32_t len = le32(buf + off);
      off += 4;
      if (len > size - off) fail("plan: truncated argument");
      if (!(o->a[i].s = malloc(len + 1u))) die("plan");
      memcpy(o->a[i].s, buf + off, len);
      o->a[i].s[len] = 0;
      o->a[i].len = len;
      off += len;
    }
  }
  free(buf);
  *nops = n;
  return ops;
}

static void need(const struct op *o, int argc) {
  if (o->argc < argc) fail("plan: op %u needs %d arguments, got %u", o->code, argc, o->argc);
}

static int ns_type(const char *t) {
  static const struct { const char *name; int flag; } types[] = {
    {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS}, {"pid", CLONE_NEWPID}, {"net", CLONE_NEWNET},
    {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
  };
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (!strcmp(t, types[i].name)) return types[i].flag;
  fail("plan: unknown namespace type %s", t);
}

static void write_proc(pid_t pid, const char *file, const struct arg *content) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, content->s, content->len) != (ssize_t)content->len) die("write %s", path);
  close(fd);
}

/* Everything the parent learns from its ops; applied around clone. */
struct parent {
  int cg_fd[32]; const char *cg_path[32]; int ncg;
  const struct arg *uid_map, *gid_map, *setgroups;
  int joined_user;
};

static _Noreturn void child_main(struct op *ops, size_t i, size_t nops, int syncfd, int userns);

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: pier-helper <ctlfd> [<infd>]  (driven by pier-runtime; see PROTOCOL.md)\n");
    return 2;
  }
  ctlfd = atoi(argv[1]);
  infd = argc > 2 ? atoi(argv[2]) : ctlfd;
  struct stat st;
  if (ctlfd < 3 || fstat(ctlfd, &st) < 0 || infd < 3 || fstat(infd, &st) < 0) {
    fprintf(stderr, "pier-helper: bad control fd %s\n", argv[argc > 2 ? 2 : 1]);
    return 2;
  }
  ensure_sealed(argv);

  size_t nops, i;
  struct op *ops = read_plan(&nops);
  struct parent P = {0};
  int nsfd[16], nns = 0;

  /* Open every namespace and cgroup file before joining anything: after setns(mnt/user) the
   * host paths may no longer resolve or be accessible. */
  for (i = 0; i < nops && ops[i].code != OP_CLONE; i++) {
    struct op *o = &ops[i];
    if (o->code == OP_SETNS) {
      need(o, 2);
      if (nns == 16) fail("plan: too many namespaces");
      if ((nsfd[nns++] = open(o->a[1].s, O_RDONLY | O_CLOEXEC)) < 0) die("open namespace %s", o->a[1].s);
    } else if (o->code == OP_CGROUP_PROCS) {
      need(o, 1);
      if (P.ncg == 32) fail("plan: too many cgroups");
      P.cg_path[P.ncg] = o->a[0].s;
      if ((P.cg_fd[P.ncg++] = open(o->a[0].s, O_WRONLY | O_CLOEXEC)) < 0) die("open %s", o->a[0].s);
    }
  }
  if (i == nops) fail("plan: no CLONE op");

  nns = 0;
  for (i = 0; ops[i].code != OP_CLONE; i++) {
    struct op *o = &ops[i];
    switch (o->code) {
    case OP_CGROUP_PROCS: break;
    case OP_SETNS: {
      int t = ns_type(o->a[0].s);
      if (setns(nsfd[nns], t) < 0) die("setns %s %s", o->a[0].s, o->a[1].s);
      close(nsfd[nns++]);
      if (t == CLONE_NEWUSER) P.joined_user = 1;
      break;
    }
    case OP_UID_MAP: need(o, 1); P.uid_map = &o->a[0]; break;
    case OP_GID_MAP: need(o, 1); P.gid_map = &o->a[0]; break;
    case OP_SETGROUPS: need(o, 1); P.setgroups = &o->a[0]; break;
    case OP_CONSOLE_CONNECT: need(o, 1); console_connect(o->a[0].s); break;
    case OP_FIFO_OPEN: {
      /* made by the parent, still host root: a child in a user namespace may not create it in the
         state dir. Owned by the container's root like runc's; the child inherits the O_PATH fd. */
      need(o, 3);
      if (mkfifo(o->a[0].s, 0622) < 0 && errno != EEXIST) die("mkfifo %s", o->a[0].s);
      if (chown(o->a[0].s, (uid_t)num(o, 1), (gid_t)num(o, 2)) < 0) die("chown %s", o->a[0].s);
      /* explicit mode, not mkfifo's: the caller's umask would take away the write bit that lets a
         non-root container user reopen it */
      if (chmod(o->a[0].s, 0622) < 0) die("chmod %s", o->a[0].s);
      if ((exec_fifo = open(o->a[0].s, O_PATH | O_CLOEXEC)) < 0) die("open exec fifo %s", o->a[0].s);
      break;
    }
    default: fail("plan: op %u is not a parent op", o->code);
    }
  }

  struct op *cl = &ops[i++];
  need(cl, 2);
  unsigned long flags = (unsigned long)num(cl, 0);
  int wait_mode = !strcmp(cl->a[1].s, "wait");
  if (!wait_mode && strcmp(cl->a[1].s, "detach")) fail("plan: CLONE mode must be detach or wait");
  if (relay_sock >= 0 && !wait_mode) fail("plan: a console relay needs wait mode");

  int sync[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0) die("socketpair");
  /* Block the signals we forward before the child exists, so none is lost or kills us early. */
  sigset_t fwd, old;
  sigemptyset(&fwd);
  int fwd_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGWINCH};
  for (size_t k = 0; k < sizeof fwd_sigs / sizeof fwd_sigs[0]; k++) sigaddset(&fwd, fwd_sigs[k]);
  if (wait_mode) sigprocmask(SIG_BLOCK, &fwd, &old);

  pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0) die("clone");
  if (pid == 0) {
    if (wait_mode) sigprocmask(SIG_SETMASK, &old, NULL);
    close(sync[0]);
    for (int k = 0; k < P.ncg; k++) close(P.cg_fd[k]);
    if (relay_sock >= 0) close(relay_sock);
    child_main(ops, i, nops, sync[1], (flags & CLONE_NEWUSER) || P.joined_user);
  }
  close(sync[1]);
  if (console_sock >= 0) close(console_sock);

  /* On any failure from here the child must not run on half-configured. */
  for (int k = 0; k < P.ncg; k++) {
    char b[32];
    int n = snprintf(b, sizeof b, "%d", pid);
    if (write(P.cg_fd[k], b, (size_t)n) != n) { int e = errno; kill(pid, SIGKILL); errno = e; die("join cgroup %s", P.cg_path[k]); }
    close(P.cg_fd[k]);
  }
  if (flags & CLONE_NEWUSER) {
    if (!P.uid_map || !P.gid_map) { kill(pid, SIGKILL); fail("plan: a new user namespace needs UID_MAP and GID_MAP"); }
    if (P.setgroups) write_proc(pid, "setgroups", P.setgroups);
    write_proc(pid, "uid_map", P.uid_map);
    write_proc(pid, "gid_map", P.gid_map);
  }
  char msg[32];
  int n = snprintf(msg, sizeof msg, "pid %d\n", pid);
  ctl_write(msg, (size_t)n);
  if (write(sync[0], "g", 1) != 1) die("release child");
  close(sync[0]);
  if (!wait_mode) _exit(0);

  /* wait mode: from here on the child reports its own errors; we only relay and forward. */
  close(ctlfd);
  if (infd != ctlfd) close(infd);
  int sigfd = signalfd(-1, &fwd, SFD_CLOEXEC);
  if (sigfd < 0) { perror("pier-helper: signalfd"); }
  int status = relay_run(pid, sigfd);
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
  _exit(1);
}

static _Noreturn void child_main(struct op *ops, size_t i, size_t nops, int syncfd, int userns) {
  if (fcntl(ctlfd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(infd, F_SETFD, FD_CLOEXEC) < 0) die("cloexec ctl");
  char c;
  if (read(syncfd, &c, 1) != 1) _exit(1); /* the parent failed and said so */
  close(syncfd);
  if (userns) {
    if (setresgid(0, 0, 0) < 0) die("setresgid 0 in user namespace");
    if (setresuid(0, 0, 0) < 0) die("setresuid 0 in user namespace");
    /* an id change clears dumpable, which makes /proc/self/fd (used for in-root mounts) root-only */
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) die("prctl dumpable");
  }
  umask(0); /* modes in the plan are exact; the container's umask comes from UMASK */
  /* FIFO_WAIT reopens the fifo through this, so it works even if the container mounts no /proc */
  self_fds = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (; i < nops; i++) {
    struct op *o = &ops[i];
    struct arg *a = o->a;
    switch (o->code) {
    case OP_UNSHARE: need(o, 1); if (unshare((int)num(o, 0)) < 0) die("unshare %s", a[0].s); break;
    case OP_SETROOT: need(o, 1); mnt_setroot(a[0].s); break;
    case OP_MOUNT: need(o, 6); mnt_mount(o); break;
    case OP_MKDIR: need(o, 2); mnt_mkdir(a[0].s, (mode_t)strtoul(a[1].s, NULL, 8)); break;
    case OP_MKNOD: need(o, 7); mnt_mknod(o); break;
    case OP_SYMLINK: need(o, 2); mnt_symlink(a[0].s, a[1].s); break;
    case OP_WRITE: need(o, 2); mnt_write(a[0].s, a[1].s, a[1].len); break;
    case OP_PIVOT_ROOT: need(o, 1); mnt_pivot(a[0].s); break;
    case OP_CHROOT: need(o, 1); mnt_chroot(a[0].s, o->argc > 1 && !strcmp(a[1].s, "jail")); break;
    case OP_SETHOSTNAME: need(o, 1); if (sethostname(a[0].s, a[0].len) < 0) die("sethostname %s", a[0].s); break;
    case OP_SETDOMAINNAME: need(o, 1); if (setdomainname(a[0].s, a[0].len) < 0) die("setdomainname %s", a[0].s); break;
    case OP_KEYRING: need(o, 1); proc_keyring(a[0].s); break;
    case OP_SYNC_WAIT: hook_sync_wait(); break;
    case OP_SYNC_READY: ctl_write("ready\n", 6); break;
    case OP_HOOK: need(o, 3); hook_run(o); break;
    case OP_FIFO_WAIT: {
      int fifo = exec_fifo;
      if (fifo < 0) fail("plan: FIFO_WAIT without FIFO_OPEN");
      /* The container's own /proc first: its lookup re-checks ownership after a uid change. The fd
         to /proc/self/fd taken at start is the fallback for containers without /proc; its cached
         owner is root, so it only serves processes that stay root. */
      char p[64];
      snprintf(p, sizeof p, "/proc/self/fd/%d", fifo);
      int w;
      do w = open(p, O_WRONLY | O_CLOEXEC); while (w < 0 && errno == EINTR);
      if (w < 0 && errno == ENOENT && self_fds >= 0) {
        snprintf(p, sizeof p, "%d", fifo);
        do w = openat(self_fds, p, O_WRONLY | O_CLOEXEC); while (w < 0 && errno == EINTR);
      }
      if (w < 0) die("open exec fifo for writing");
      if (write(w, "0", 1) != 1) die("write exec fifo");
      close(w);
      close(fifo);
      break;
    }
    case OP_CONSOLE_SETUP: need(o, 3); console_setup(o); break;
    case OP_RLIMIT: need(o, 3); proc_rlimit(o); break;
    case OP_CAPS_BOUNDING: need(o, 1); proc_caps_bounding(num(o, 0)); break;
    case OP_SETUSER: need(o, 3); proc_setuser(o); break;
    case OP_CAPS: need(o, 4); proc_caps(o); break;
    case OP_UMASK: need(o, 1); umask((mode_t)strtoul(a[0].s, NULL, 8)); break;
    case OP_NO_NEW_PRIVS: if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("prctl no_new_privs"); break;
    case OP_SECCOMP: need(o, 2); proc_seccomp(o); break;
    case OP_CHDIR: need(o, 1); if (chdir(a[0].s) < 0) die("chdir %s", a[0].s); break;
    case OP_ENV: need(o, 1); proc_env(a[0].s); break;
    case OP_RESOLVE_EXEC: need(o, 1); proc_resolve_exec(a[0].s); break;
    case OP_EXEC: need(o, 1); proc_exec(o);
    case OP_CLOSE_FDS:
      need(o, 1);
      if (syscall(SYS_close_range, (unsigned)num(o, 0), ~0u, 4 /* CLOSE_RANGE_CLOEXEC */) < 0) die("close_range");
      break;
    case OP_MASK: need(o, 1); mnt_mask(a[0].s); break;
    case OP_READONLY: need(o, 1); mnt_readonly(a[0].s); break;
    case OP_SETSID: if (setsid() < 0) die("setsid"); break;
    case OP_REMOUNT_CLEAR: need(o, 2); mnt_remount_clear(a[0].s, (unsigned long)num(o, 1)); break;
    default: fail("plan: op %u is not a child op", o->code);
    }
  }
  fail("plan: ended without EXEC");
}
