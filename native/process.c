/* Process attributes applied just before exec: rlimits, capabilities, user, seccomp, keyring,
 * environment and executable lookup. */
#include "pier.h"
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static rlim_t rlim(const struct op *o, int i) {
  return strcmp(o->a[i].s, "unlimited") ? (rlim_t)num(o, i) : RLIM_INFINITY;
}

void proc_rlimit(const struct op *o) {
  struct rlimit rl = {.rlim_cur = rlim(o, 1), .rlim_max = rlim(o, 2)};
  if (setrlimit((int)num(o, 0), &rl) < 0) die("setrlimit type %s", o->a[0].s);
}

void proc_caps_bounding(unsigned long long mask) {
  /* probe the kernel's last cap with PR_CAPBSET_READ: /proc may not be mounted */
  for (int cap = 0; cap < 64; cap++) {
    int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (r < 0) break;
    if (r == 1 && !(mask & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
      die("drop bounding capability %d", cap);
  }
}

void proc_setuser(const struct op *o) {
  uid_t uid = (uid_t)num(o, 0);
  gid_t gid = (gid_t)num(o, 1);
  const char *groups = o->a[2].s;
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) die("prctl keepcaps");
  if (strcmp(groups, "-")) {
    gid_t list[256];
    size_t n = 0;
    for (const char *p = groups; *p;) {
      if (n == 256) fail("setgroups: too many groups");
      char *end;
      list[n++] = (gid_t)strtoul(p, &end, 10);
      if (end == p) fail("setgroups: bad group list %s", groups);
      p = *end == ',' ? end + 1 : end;
    }
    if (setgroups(n, list) < 0) die("setgroups %s", *groups ? groups : "(none)");
  }
  if (setresgid(gid, gid, gid) < 0) die("setresgid %u", gid);
  if (setresuid(uid, uid, uid) < 0) die("setresuid %u", uid);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) die("prctl keepcaps");
  /* the uid change cleared dumpable; FIFO_WAIT still opens /proc/self/fd (execve resets it) */
  if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) die("prctl dumpable");
}

void proc_caps(const struct op *o) {
  unsigned long long e = num(o, 0), p = num(o, 1), i = num(o, 2), amb = num(o, 3);
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2] = {
    {.effective = (uint32_t)e, .permitted = (uint32_t)p, .inheritable = (uint32_t)i},
    {.effective = (uint32_t)(e >> 32), .permitted = (uint32_t)(p >> 32), .inheritable = (uint32_t)(i >> 32)},
  };
  if (syscall(SYS_capset, &h, d) < 0) die("capset");
  for (int cap = 0; cap < 64; cap++)
    if ((amb & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
      die("raise ambient capability %d", cap);
}

void proc_seccomp(const struct op *o) {
  unsigned long flags = (unsigned long)num(o, 0);
  if (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) fail("seccomp: listener (notify) filters are not supported");
  if (o->a[1].len == 0 || o->a[1].len % sizeof(struct sock_filter)) fail("seccomp: program is not a sock_filter array");
  struct sock_fprog prog = {.len = (unsigned short)(o->a[1].len / sizeof(struct sock_filter)),
                            .filter = (struct sock_filter *)o->a[1].s};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0) die("load seccomp filter");
}

void proc_keyring(const char *name) {
  long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name, 0, 0, 0);
  if (id < 0) {
    if (errno == ENOSYS) return; /* kernel without keys: nothing to isolate */
    die("join session keyring %s", name);
  }
  /* possessor all, user view/read/link/search: the container cannot reach the host's keys */
  if (syscall(SYS_keyctl, KEYCTL_SETPERM, id, 0x3f1b0000, 0, 0) < 0) die("set keyring permissions");
}

static char **envv;
static size_t nenv;

void proc_env(const char *kv) {
  char **n = realloc(envv, (nenv + 2) * sizeof *n);
  if (!n) die("env");
  envv = n;
  envv[nenv++] = (char *)kv;
  envv[nenv] = NULL;
}

static const char *env_path(void) {
  for (size_t i = 0; i < nenv; i++) if (!strncmp(envv[i], "PATH=", 5)) return envv[i] + 5;
  return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

static int executable(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

static char found[4096];

/* PATH search like Go's exec.LookPath; callers match the wording of its error. */
static const char *lookup(const char *name) {
  if (strchr(name, '/')) {
    struct stat st;
    if (stat(name, &st) < 0) die("exec: \"%s\": stat %s", name, name);
    return name;
  }
  const char *path = env_path();
  for (const char *p = path;;) {
    const char *colon = strchrnul(p, ':');
    int len = (int)(colon - p);
    snprintf(found, sizeof found, "%.*s/%s", len ? len : 1, len ? p : ".", name);
    if (executable(found)) return found;
    if (!*colon) break;
    p = colon + 1;
  }
  fail("exec: \"%s\": executable file not found in $PATH", name);
}

void proc_resolve_exec(const char *name) { (void)lookup(name); }

void proc_exec(const struct op *o) {
  char **argv = calloc(o->argc + 1u, sizeof *argv);
  if (!argv) die("exec");
  for (unsigned i = 0; i < o->argc; i++) argv[i] = o->a[i].s;
  char *noenv[] = {NULL};
  const char *path = lookup(argv[0]);
  execve(path, argv, envv ? envv : noenv);
  die("exec %s", path);
}
