/*
 * pier-runtime's native front (bin/pier-runtime). Every runtime call used to start Node (~30 ms);
 * podman and containerd call the runtime CLI several times per container, so the calls that decide
 * nothing are served here from state.json, in C, without Node:
 *
 *   start, state, kill, delete (stopped, or --force when no hooks are involved), ps
 *
 * Everything else, and anything this file is not sure about, is handed to the TypeScript CLI by
 * execv of bin/pier-runtime-node with the same argv: unknown flags, --help/--version, non-root
 * callers, non-ASCII arguments, a state.json this parser does not fully understand, hooks, paused
 * containers, leftover processes in a cgroup, failed ps runs. A hand-over only ever happens before
 * this process has written anything or changed anything that the TypeScript side would not redo
 * the same way (see native/README.md, "front").
 *
 * The behaviour mirrors src/cli/runtime/{main,command,start,state,kill,delete,ps}.ts and
 * src/runtime/{state,proc,signals}.ts, src/runtime/container/{start,kill,delete,ps}.ts and the
 * cgroup manager's pids/frozen/destroy: same flags, same output bytes, same error lines, same exit
 * codes. test/integration/runtime-front.test.ts runs both and compares.
 *
 * PIER_RUNTIME_FRONT=0 hands every call over (the TypeScript CLI alone); PIER_RUNTIME_FRONT=native
 * makes a hand-over an error instead (exit 125, reason on stderr), for tests that must know the
 * front served the call itself.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG "pier-runtime"
#define DEFAULT_ROOT "/run/pier-runtime"
#define STATE_OCI_VERSION "1.0.2"
#define MAX_STATE_BYTES (16u << 20)
#define MAX_DEPTH 256
#define PS_MAX_BUFFER (1024u * 1024u) /* Node's execFileSync maxBuffer */

static char **g_argv;

/* ---- small buffers ---------------------------------------------------------------------------- */

struct buf {
  char *p;
  size_t n, cap;
};

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    static const char m[] = PROG ": out of memory\n";
    if (write(2, m, sizeof m - 1) < 0) { /* nothing left to try */ }
    _exit(1);
  }
  return q;
}

static void bput(struct buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->p = xrealloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}
static void bputs(struct buf *b, const char *s) { bput(b, s, strlen(s)); }
static void bprintf(struct buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    bput(b, tmp, (size_t)n);
    return;
  }
  char *big = xrealloc(NULL, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  bput(b, big, (size_t)n);
  free(big);
}

/* JSON.stringify of an ASCII string (every string the front puts in a message is ASCII). */
static void bjson(struct buf *b, const char *s) {
  bputs(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    switch (c) {
      case '"': bputs(b, "\\\""); break;
      case '\\': bputs(b, "\\\\"); break;
      case '\b': bputs(b, "\\b"); break;
      case '\f': bputs(b, "\\f"); break;
      case '\n': bputs(b, "\\n"); break;
      case '\r': bputs(b, "\\r"); break;
      case '\t': bputs(b, "\\t"); break;
      default:
        if (c < 0x20) bprintf(b, "\\u%04x", c);
        else bput(b, (const char *)&c, 1);
    }
  }
  bputs(b, "\"");
}

/* ---- hand-over to the TypeScript CLI --------------------------------------------------------- */

static _Noreturn void handoff(const char *why) {
  const char *mode = getenv("PIER_RUNTIME_FRONT");
  if (mode && strcmp(mode, "native") == 0) {
    fprintf(stderr, PROG " front: would hand over to the TypeScript CLI: %s\n", why);
    exit(125);
  }
  /* The front is native/build/pier-runtime; the TypeScript CLI's launcher is bin/pier-runtime-node. */
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0 || (size_t)n >= sizeof exe - 1) {
    fprintf(stderr, PROG ": cannot find the pier-runtime bundle: readlink /proc/self/exe: %s\n", n < 0 ? strerror(errno) : "path too long");
    exit(1);
  }
  exe[n] = 0;
  for (int up = 0; up < 3; up++) {
    char *slash = strrchr(exe, '/');
    if (!slash) break;
    *slash = 0;
  }
  char launcher[PATH_MAX + 32];
  snprintf(launcher, sizeof launcher, "%s/bin/pier-runtime-node", exe);
  signal(SIGPIPE, SIG_DFL);
  g_argv[0] = launcher;
  execv(launcher, g_argv);
  fprintf(stderr, PROG ": cannot run the TypeScript CLI %s: %s\n", launcher, strerror(errno));
  exit(1);
}

/* ---- logging and errors, as src/common/log.ts and runtimeMain's catch write them ------------- */

static struct {
  const char *file; /* --log, empty = none */
  int json;         /* --log-format json */
} logcfg;

static void write_all(int fd, const char *p, size_t n, int *err) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (err) *err = errno;
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

static void iso_now(char out[96]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, ts.tv_nsec / 1000000);
}

static void log_line(struct buf *b, const char *level, const char *msg) {
  char t[96];
  iso_now(t);
  if (logcfg.json) {
    bprintf(b, "{\"level\":\"%s\",\"msg\":", level);
    bjson(b, msg);
    bprintf(b, ",\"time\":\"%s\"}\n", t);
  } else {
    bprintf(b, "time=\"%s\" level=%s msg=", t, level);
    bjson(b, msg);
    bputs(b, "\n");
  }
}

/* The catch of runtimeMain: the log file gets the line; stderr gets `pier-runtime: msg` (or the JSON line). */
static _Noreturn void fail(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int have_file = logcfg.file && *logcfg.file;
  if (have_file) {
    struct buf l = {0};
    log_line(&l, "error", msg);
    int fd = open(logcfg.file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    int err = 0;
    if (fd >= 0) {
      write_all(fd, l.p, l.n, &err);
      close(fd);
    }
    if (fd < 0 || err) write_all(2, l.p, l.n, NULL);
    free(l.p);
  }
  struct buf e = {0};
  if (!have_file || !logcfg.json) bprintf(&e, PROG ": %s\n", msg);
  else log_line(&e, "error", msg);
  write_all(2, e.p, e.n, NULL);
  exit(1);
}

/* libuv's wording for the errno values a Node error message may carry ("EPIPE: broken pipe, write"). */
static const char *uv_code(int e, const char **text) {
  static const struct { int e; const char *code, *text; } t[] = {
    {EPIPE, "EPIPE", "broken pipe"}, {EBADF, "EBADF", "bad file descriptor"}, {EIO, "EIO", "i/o error"},
    {ENOSPC, "ENOSPC", "no space left on device"}, {EPERM, "EPERM", "operation not permitted"},
    {EACCES, "EACCES", "permission denied"}, {EBUSY, "EBUSY", "resource busy or locked"},
    {ENOTEMPTY, "ENOTEMPTY", "directory not empty"}, {EROFS, "EROFS", "read-only file system"},
    {EINVAL, "EINVAL", "invalid argument"}, {ENOENT, "ENOENT", "no such file or directory"},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (t[i].e == e) {
      *text = t[i].text;
      return t[i].code;
    }
  *text = strerror(e);
  return "UNKNOWN";
}

/* stdout as writeStdout does it: all of it, retrying EAGAIN; a failure is the command's error. */
static void out(const char *p, size_t n) {
  int err = 0;
  write_all(1, p, n, &err);
  if (err) {
    const char *text, *code = uv_code(err, &text);
    fail("%s: %s, write", code, text);
  }
}

/* ---- argument parsing: src/cli/args.ts parseFlags with stopAtPositional --------------------- */

struct flag {
  const char *name;
  const char *shortn;
  int value;
};
struct parsed {
  const char *val[12]; /* value flags: last given */
  int on[12];          /* bool flags: last given (1/0); value flags: 1 once given */
  int rest;            /* index in argv of the first rest element */
};

/* Returns 0, or -1 where parseFlags throws (the caller hands over for the exact message). */
static int parse_flags(char **argv, int argc, int from, const struct flag *specs, int nspecs, struct parsed *p) {
  memset(p, 0, sizeof *p);
  int i = from;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-' || strcmp(a, "-") == 0) break;
    const char *body = a + 1;
    if (*body == '-') body++;
    const char *eq = strchr(body, '=');
    size_t nlen = eq ? (size_t)(eq - body) : strlen(body);
    int k = -1;
    for (int s = 0; s < nspecs && k < 0; s++) {
      if ((strlen(specs[s].name) == nlen && strncmp(specs[s].name, body, nlen) == 0) ||
          (specs[s].shortn && strlen(specs[s].shortn) == nlen && strncmp(specs[s].shortn, body, nlen) == 0))
        k = s;
    }
    if (k < 0) return -1;
    if (specs[k].value) {
      if (eq) p->val[k] = eq + 1;
      else {
        if (i + 1 >= argc) return -1;
        p->val[k] = argv[++i];
      }
      p->on[k] = 1;
    } else if (eq) {
      if (strcmp(eq + 1, "true") == 0) p->on[k] = 1;
      else if (strcmp(eq + 1, "false") == 0) p->on[k] = 0;
      else return -1;
    } else p->on[k] = 1;
  }
  p->rest = i;
  return 0;
}

/* ---- JSON: a strict RFC 8259 parser into a flat node array ----------------------------------- */
/*
 * Why hand-written: the front needs ~15 fields of one file the runtime itself writes, must start
 * in well under a millisecond and must be exact about what it does not understand (that is a
 * hand-over, never a guess); a library would bring a dependency for less control. Strings keep
 * their raw token so `state` can copy them byte for byte, which is exact only when the token is
 * already in JSON.stringify's canonical form: `canon` records that.
 */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jnode {
  int type;
  const char *s; /* raw token; for STR including the quotes */
  size_t n;
  int key;   /* object member: the index of its key (a STR node), else -1 */
  int child; /* ARR/OBJ: first element, -1 if empty */
  int next;  /* next sibling, -1 */
  int canon; /* STR: raw token == JSON.stringify(decoded value) */
  int bval;
};
static struct jnode *J;
static int JN, JCAP;
static const char *jp, *jend;

static int jnew(int type, const char *s) {
  if (JN == JCAP) {
    JCAP = JCAP ? JCAP * 2 : 256;
    J = xrealloc(J, (size_t)JCAP * sizeof *J);
  }
  J[JN] = (struct jnode){type, s, 0, -1, -1, -1, 0, 0};
  return JN++;
}
static void jws(void) {
  while (jp < jend && (*jp == ' ' || *jp == '\t' || *jp == '\n' || *jp == '\r')) jp++;
}
static int hexv(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
/* Length of a valid UTF-8 sequence at p (first byte >= 0x80), or 0. */
static int utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0];
  int n;
  unsigned min;
  if (c >= 0xc2 && c <= 0xdf) n = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) n = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, min = 0x10000;
  else return 0;
  if (end - p < n) return 0;
  unsigned cp = c & (0xff >> (n + 1));
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

static int utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    if (*p < 0x80) {
      p++;
      continue;
    }
    int l = utf8_len(p, end);
    if (!l) return 0;
    p += l;
  }
  return 1;
}

static int jstring(void) {
  int k = jnew(J_STR, jp);
  int canon = 1;
  jp++;
  while (jp < jend && *jp != '"') {
    unsigned char c = (unsigned char)*jp;
    if (c < 0x20) return -1;
    if (c == '\\') {
      if (jend - jp < 2) return -1;
      char e = jp[1];
      if (e == 'u') {
        if (jend - jp < 6) return -1;
        int v = 0;
        for (int i = 2; i < 6; i++) {
          int h = hexv((unsigned char)jp[i]);
          if (h < 0) return -1;
          if (jp[i] >= 'A' && jp[i] <= 'F') canon = 0;
          v = v * 16 + h;
        }
        if (v >= 0x20 || v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t') canon = 0;
        jp += 6;
      } else if (strchr("\"\\/bfnrt", e)) {
        if (e == '/') canon = 0;
        jp += 2;
      } else return -1;
    } else if (c >= 0x80) {
      int n = utf8_len((const unsigned char *)jp, (const unsigned char *)jend);
      if (!n) return -1; /* Node would decode it to U+FFFD: not ours to reproduce */
      jp += n;
    } else jp++;
  }
  if (jp >= jend) return -1;
  jp++;
  J[k].n = (size_t)(jp - J[k].s);
  J[k].canon = canon;
  return k;
}

static int jvalue(int depth);
static int jcontainer(int type, int depth) {
  int k = jnew(type, jp);
  char close = type == J_ARR ? ']' : '}';
  jp++;
  jws();
  int last = -1;
  if (jp < jend && *jp == close) {
    jp++;
    J[k].n = (size_t)(jp - J[k].s);
    return k;
  }
  for (;;) {
    int key = -1;
    if (type == J_OBJ) {
      jws();
      if (jp >= jend || *jp != '"') return -1;
      key = jstring();
      if (key < 0) return -1;
      jws();
      if (jp >= jend || *jp != ':') return -1;
      jp++;
    }
    int v = jvalue(depth + 1);
    if (v < 0) return -1;
    J[v].key = key;
    if (last < 0) J[k].child = v;
    else J[last].next = v;
    last = v;
    jws();
    if (jp < jend && *jp == ',') {
      jp++;
      continue;
    }
    if (jp < jend && *jp == close) {
      jp++;
      break;
    }
    return -1;
  }
  J[k].n = (size_t)(jp - J[k].s);
  return k;
}

static int jvalue(int depth) {
  if (depth > MAX_DEPTH) return -1;
  jws();
  if (jp >= jend) return -1;
  char c = *jp;
  if (c == '{') return jcontainer(J_OBJ, depth);
  if (c == '[') return jcontainer(J_ARR, depth);
  if (c == '"') return jstring();
  static const struct { const char *lit; int type, b; } lits[] = {{"null", J_NULL, 0}, {"true", J_BOOL, 1}, {"false", J_BOOL, 0}};
  for (int i = 0; i < 3; i++) {
    size_t l = strlen(lits[i].lit);
    if ((size_t)(jend - jp) >= l && memcmp(jp, lits[i].lit, l) == 0) {
      int k = jnew(lits[i].type, jp);
      J[k].n = l;
      J[k].bval = lits[i].b;
      jp += l;
      return k;
    }
  }
  const char *s = jp;
  if (jp < jend && *jp == '-') jp++;
  if (jp < jend && *jp == '0') jp++;
  else if (jp < jend && *jp >= '1' && *jp <= '9') while (jp < jend && isdigit((unsigned char)*jp)) jp++;
  else return -1;
  if (jp < jend && *jp == '.') {
    jp++;
    if (jp >= jend || !isdigit((unsigned char)*jp)) return -1;
    while (jp < jend && isdigit((unsigned char)*jp)) jp++;
  }
  if (jp < jend && (*jp == 'e' || *jp == 'E')) {
    jp++;
    if (jp < jend && (*jp == '+' || *jp == '-')) jp++;
    if (jp >= jend || !isdigit((unsigned char)*jp)) return -1;
    while (jp < jend && isdigit((unsigned char)*jp)) jp++;
  }
  int k = jnew(J_NUM, s);
  J[k].n = (size_t)(jp - s);
  return k;
}

/* Decode a STR node into a NUL-terminated malloc'd string; NULL when it holds NUL or a lone surrogate. */
static char *jdecode(int k) {
  const char *p = J[k].s + 1, *end = J[k].s + J[k].n - 1;
  char *o = xrealloc(NULL, J[k].n + 1), *q = o;
  while (p < end) {
    if (*p != '\\') {
      *q++ = *p++;
      continue;
    }
    char e = p[1];
    p += 2;
    switch (e) {
      case 'b': *q++ = '\b'; break;
      case 'f': *q++ = '\f'; break;
      case 'n': *q++ = '\n'; break;
      case 'r': *q++ = '\r'; break;
      case 't': *q++ = '\t'; break;
      case 'u': {
        unsigned v = 0;
        for (int i = 0; i < 4; i++) v = v * 16 + (unsigned)hexv((unsigned char)p[i]);
        p += 4;
        if (v >= 0xd800 && v <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
          unsigned lo = 0;
          for (int i = 2; i < 6; i++) {
            int h = hexv((unsigned char)p[i]);
            lo = lo * 16 + (unsigned)(h < 0 ? 0 : h);
          }
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
          }
        }
        if (v == 0 || (v >= 0xd800 && v <= 0xdfff)) {
          free(o);
          return NULL;
        }
        if (v < 0x80) *q++ = (char)v;
        else if (v < 0x800) *q++ = (char)(0xc0 | (v >> 6)), *q++ = (char)(0x80 | (v & 0x3f));
        else if (v < 0x10000)
          *q++ = (char)(0xe0 | (v >> 12)), *q++ = (char)(0x80 | ((v >> 6) & 0x3f)), *q++ = (char)(0x80 | (v & 0x3f));
        else
          *q++ = (char)(0xf0 | (v >> 18)), *q++ = (char)(0x80 | ((v >> 12) & 0x3f)), *q++ = (char)(0x80 | ((v >> 6) & 0x3f)),
          *q++ = (char)(0x80 | (v & 0x3f));
        break;
      }
      default: *q++ = e; /* " \ / */
    }
  }
  *q = 0;
  return o;
}

/* The member `name` of object k (the last one, as JSON.parse keeps), or -1. */
static int jget(int k, const char *name) {
  if (k < 0 || J[k].type != J_OBJ) return -1;
  int found = -1;
  for (int c = J[k].child; c >= 0; c = J[c].next) {
    char *key = jdecode(J[c].key);
    if (key && strcmp(key, name) == 0) found = c;
    free(key);
  }
  return found;
}

/* ---- the container record (src/runtime/state.ts ContainerRecord) ----------------------------- */

struct hier {
  int v2;          /* type cgroup2 */
  int has_freezer; /* controllers include "freezer" */
  char *path;
};
struct record {
  int obj;
  int id_tok, bundle_tok, rootfs_tok, created_tok, owner_tok;
  int annotations; /* OBJ node with members, or -1 */
  long pid;
  char *start_time; /* NULL = absent */
  int creating;
  int config;
  int has_cgroup;
  struct hier h[16];
  int nh;
};

static int is_canon_str(int k) { return k >= 0 && J[k].type == J_STR && J[k].canon; }
static int null_or_absent(int k) { return k < 0 || J[k].type == J_NULL; }

/*
 * Check `hooks.<phase>` of the config: 0 = none to run, 1 = hooks (or a shape runHooks would trip
 * over), so the caller hands over.
 */
static int has_hooks(const struct record *r, const char *phase) {
  if (r->config < 0 || J[r->config].type != J_OBJ) return 1;
  int hooks = jget(r->config, "hooks");
  if (null_or_absent(hooks)) return 0;
  if (J[hooks].type != J_OBJ) return 1;
  int list = jget(hooks, phase);
  if (null_or_absent(list)) return 0;
  return !(J[list].type == J_ARR && J[list].child < 0);
}

/* The runtime's cgroupFromRecord checks; anything it would refuse is a hand-over. */
static const char *load_cgroup(struct record *r, int cg) {
  if (null_or_absent(cg)) return NULL;
  if (J[cg].type != J_OBJ) return "cgroup record is not an object";
  int mode = jget(cg, "mode");
  if (mode < 0 || J[mode].type != J_STR) return "cgroup mode";
  char *m = jdecode(mode);
  int okmode = m && (!strcmp(m, "v1") || !strcmp(m, "v2") || !strcmp(m, "hybrid"));
  free(m);
  if (!okmode) return "cgroup mode";
  int hs = jget(cg, "hierarchies");
  if (hs < 0 || J[hs].type != J_ARR || J[hs].child < 0) return "cgroup hierarchies";
  for (int h = J[hs].child; h >= 0; h = J[h].next) {
    if (r->nh == (int)(sizeof r->h / sizeof r->h[0])) return "too many cgroup hierarchies";
    if (J[h].type != J_OBJ) return "cgroup hierarchy";
    int type = jget(h, "type"), mp = jget(h, "mountPoint"), path = jget(h, "path"), ctl = jget(h, "controllers");
    if (type < 0 || J[type].type != J_STR || mp < 0 || J[mp].type != J_STR || path < 0 || J[path].type != J_STR) return "cgroup hierarchy fields";
    if (ctl < 0 || J[ctl].type != J_ARR) return "cgroup controllers";
    char *t = jdecode(type), *mps = jdecode(mp), *ps = jdecode(path);
    const char *bad = NULL;
    if (!t || (strcmp(t, "cgroup") && strcmp(t, "cgroup2"))) bad = "cgroup hierarchy type";
    else if (!mps || mps[0] != '/') bad = "cgroup mountPoint";
    else if (!ps || strncmp(ps, mps, strlen(mps)) || ps[strlen(mps)] != '/') bad = "cgroup path";
    else if (strstr(ps, "/..") || strstr(ps, "//") || strstr(ps, "/./")) bad = "cgroup path is not normalised";
    struct hier *x = &r->h[r->nh];
    x->has_freezer = 0;
    for (int c = J[ctl].child; c >= 0 && !bad; c = J[c].next) {
      if (J[c].type != J_STR) {
        bad = "cgroup controllers";
        break;
      }
      char *name = jdecode(c);
      if (name && strcmp(name, "freezer") == 0) x->has_freezer = 1;
      free(name);
    }
    if (!bad) {
      x->v2 = strcmp(t, "cgroup2") == 0;
      x->path = ps;
      ps = NULL;
      r->nh++;
    }
    free(t);
    free(mps);
    free(ps);
    if (bad) return bad;
  }
  r->has_cgroup = 1;
  return NULL;
}

/* Annotations printed by `state`: exact only for string values under plain, unique, canonical keys. */
static const char *check_annotations(struct record *r, int a) {
  r->annotations = -1;
  if (null_or_absent(a)) return NULL;
  if (J[a].type != J_OBJ) return "annotations is not an object";
  if (J[a].child < 0) return NULL;
  for (int c = J[a].child; c >= 0; c = J[c].next) {
    int k = J[c].key;
    if (!is_canon_str(k) || !is_canon_str(c)) return "annotation not in canonical form";
    /* JSON.parse puts integer-like keys first; __proto__ is special: leave both to Node. */
    const char *ks = J[k].s + 1;
    size_t kl = J[k].n - 2, d = 0;
    while (d < kl && isdigit((unsigned char)ks[d])) d++;
    if (kl > 0 && d == kl) return "numeric annotation key";
    if (kl == 9 && memcmp(ks, "__proto__", 9) == 0) return "__proto__ annotation key";
    for (int o = J[a].child; o != c; o = J[o].next)
      if (J[J[o].key].n == J[k].n && memcmp(J[J[o].key].s, J[k].s, J[k].n) == 0) return "duplicate annotation key";
  }
  r->annotations = a;
  return NULL;
}

/*
 * Read <root>/<id>/state.json. Returns 0 with the record, 1 when it does not exist (tryLoad's
 * "undefined" for a missing file), or hands over for anything else.
 */
static char *state_text;
static int load_record(const char *root, const char *id, struct record *r) {
  char path[PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s/%s/state.json", root, id) >= sizeof path) handoff("state path too long");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return 1;
    handoff("cannot open state.json");
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_STATE_BYTES) handoff("state.json is not a small regular file");
  state_text = xrealloc(NULL, (size_t)st.st_size + 1);
  size_t got = 0;
  for (;;) {
    if (got == (size_t)st.st_size) {
      /* the file may have grown since fstat: read to the end */
      state_text = xrealloc(state_text, got + 4096 + 1);
      ssize_t n = read(fd, state_text + got, 4096);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) handoff("cannot read state.json");
      if (n == 0) break;
      got += (size_t)n;
      if (got > MAX_STATE_BYTES) handoff("state.json too large");
      st.st_size = (off_t)got;
      continue;
    }
    ssize_t n = read(fd, state_text + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) handoff("cannot read state.json");
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  jp = state_text;
  jend = state_text + got;
  JN = 0;
  int top = jvalue(0);
  if (top >= 0) jws();
  if (top < 0 || jp != jend) handoff("state.json is not JSON this parser takes");
  if (J[top].type != J_OBJ) handoff("state.json is not an object");
  memset(r, 0, sizeof *r);
  r->obj = top;
  const char *bad = NULL;
  r->id_tok = jget(top, "id");
  r->bundle_tok = jget(top, "bundle");
  r->rootfs_tok = jget(top, "rootfs");
  r->created_tok = jget(top, "created");
  r->owner_tok = jget(top, "owner");
  if (!is_canon_str(r->id_tok) || !is_canon_str(r->bundle_tok) || !is_canon_str(r->rootfs_tok) || !is_canon_str(r->created_tok) ||
      !is_canon_str(r->owner_tok))
    bad = "record strings";
  int pid = jget(top, "pid");
  if (!bad) {
    if (pid < 0 || J[pid].type != J_NUM) bad = "pid";
    else {
      const char *s = J[pid].s;
      size_t n = J[pid].n, i = s[0] == '-';
      if (n - i == 0 || n - i > 9) bad = "pid";
      for (size_t j = i; j < n && !bad; j++)
        if (!isdigit((unsigned char)s[j])) bad = "pid";
      if (!bad && n - i > 1 && s[i] == '0') bad = "pid";
      if (!bad && i && n == 2 && s[1] == '0') bad = "pid"; /* -0 */
      if (!bad) r->pid = strtol(s, NULL, 10);
    }
  }
  int stt = jget(top, "startTime");
  if (!bad && stt >= 0) {
    if (J[stt].type != J_STR || !(r->start_time = jdecode(stt))) bad = "startTime";
  }
  int phase = jget(top, "phase");
  if (!bad) {
    char *ph = phase >= 0 && J[phase].type == J_STR ? jdecode(phase) : NULL;
    if (ph && strcmp(ph, "creating") == 0) r->creating = 1;
    else if (!ph || strcmp(ph, "created")) bad = "phase";
    free(ph);
  }
  if (!bad) bad = check_annotations(r, jget(top, "annotations"));
  r->config = jget(top, "config");
  if (!bad) bad = load_cgroup(r, jget(top, "cgroup"));
  if (!bad) {
    /* the store finds exec.fifo by the record's id: keep to records that name their own directory */
    char *rid = jdecode(r->id_tok);
    if (!rid || strcmp(rid, id)) bad = "record id is not its directory's name";
    free(rid);
  }
  if (bad) handoff(bad);
  return 0;
}

/* ---- processes: src/runtime/proc.ts ------------------------------------------------------------ */

/* isProcessAlive: pid runs the process that started at start_time, and is not a zombie. */
static int alive(long pid, const char *start_time) {
  if (pid <= 0) return 0;
  char path[64], text[4096];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = 0;
  /* comm (field 2) is the container's to choose and may hold spaces and ')': split after the last ')'. */
  char *rp = NULL;
  for (ssize_t i = n - 1; i >= 0; i--)
    if (text[i] == ')') {
      rp = text + i;
      break;
    }
  if (!rp || rp[1] != ' ') handoff("unexpected /proc/<pid>/stat");
  char *f = rp + 2, *fields[20];
  int nf = 0;
  for (char *s = f; nf < 20;) {
    fields[nf++] = s;
    char *sp = strchr(s, ' ');
    if (!sp) break;
    *sp = 0;
    s = sp + 1;
  }
  if (strcmp(fields[0], "Z") == 0 || strcmp(fields[0], "X") == 0) return 0;
  if (!start_time) return 1;
  if (nf < 20) return 0;
  return strcmp(fields[19], start_time) == 0;
}

/* ---- cgroups: the parts of src/runtime/cgroups/manager.ts the front uses --------------------- */

/* Read a small file; returns its length, -1 with errno on failure. */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf + got, cap - 1 - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
    if (n == 0 || got + (size_t)n >= cap - 1) {
      got += (size_t)(n > 0 ? n : 0);
      break;
    }
    got += (size_t)n;
  }
  close(fd);
  buf[got] = 0;
  return (ssize_t)got;
}

static char *trim(char *s) {
  while (*s && isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
  return s;
}

/* Dir.readOpt: the trimmed content, "" for a missing file (never equal to what callers compare with). */
static int read_opt_is(const char *dir, const char *file, const char *want) {
  char path[PATH_MAX], buf[256];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if (read_small(path, buf, sizeof buf) < 0) {
    if (errno == ENOENT) return 0;
    handoff("cannot read a freezer file");
  }
  return strcmp(trim(buf), want) == 0;
}

static int frozen(const struct record *r) {
  for (int i = 0; i < r->nh; i++)
    if (!r->h[i].v2 && r->h[i].has_freezer) return read_opt_is(r->h[i].path, "freezer.state", "FROZEN");
  for (int i = 0; i < r->nh; i++)
    if (r->h[i].v2) {
      char path[PATH_MAX];
      snprintf(path, sizeof path, "%s/cgroup.freeze", r->h[i].path);
      if (access(path, F_OK) != 0) return 0;
      return read_opt_is(r->h[i].path, "cgroup.freeze", "1");
    }
  return 0;
}

struct pids {
  long *v;
  int n, cap;
};
static void pids_add(struct pids *p, long pid) {
  for (int i = 0; i < p->n; i++)
    if (p->v[i] == pid) return;
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 32;
    p->v = xrealloc(p->v, (size_t)p->cap * sizeof *p->v);
  }
  p->v[p->n++] = pid;
}

/*
 * Call fn for each subdirectory of a cgroup dir, stopping at the first nonzero answer (which is
 * returned). -1: the dir is gone (not an error: a cgroup may vanish while we walk). Both walks of
 * a cgroup tree (pids, removal) go through here.
 */
static int each_subdir(const char *dir, int (*fn)(const char *sub, void *arg), void *arg) {
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT) return -1;
    handoff("cannot list a cgroup directory");
  }
  int r = 0;
  struct dirent *e;
  while (!r && (e = readdir(d))) {
    if (e->d_type == DT_UNKNOWN) handoff("cgroupfs without d_type");
    if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char sub[PATH_MAX];
    if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= sizeof sub) handoff("cgroup path too long");
    r = fn(sub, arg);
  }
  closedir(d);
  return r;
}

static void walk_pids(const char *dir, struct pids *p, int depth);
struct walk { struct pids *p; int depth; };
static int walk_one(const char *sub, void *arg) {
  struct walk *w = arg;
  walk_pids(sub, w->p, w->depth);
  return 0;
}

static int remove_tree(const char *dir, int depth);
static int remove_one(const char *sub, void *arg) {
  return remove_tree(sub, *(int *)arg);
}

/* Cgroup.pids(): cgroup.procs of the container's cgroup and every child, in every hierarchy. */
static void walk_pids(const char *dir, struct pids *p, int depth) {
  if (depth > 64) handoff("cgroup tree too deep");
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENODEV) return;
    handoff("cannot read cgroup.procs");
  }
  struct buf b = {0};
  char chunk[4096];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) handoff("cannot read cgroup.procs");
    if (n == 0) break;
    bput(&b, chunk, (size_t)n);
  }
  close(fd);
  for (char *line = b.p; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    char *t = trim(line);
    size_t len = strlen(t), d = 0;
    while (d < len && isdigit((unsigned char)t[d])) d++;
    if (len > 0 && d == len) {
      if (len > 15) handoff("odd pid in cgroup.procs");
      long pid = strtol(t, NULL, 10);
      if (pid <= 0) handoff("pid 0 in cgroup.procs (another pid namespace)");
      pids_add(p, pid);
    }
    line = nl ? nl + 1 : NULL;
  }
  free(b.p);
  struct walk w = {p, depth + 1};
  each_subdir(dir, walk_one, &w);
}

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return x < y ? -1 : x > y;
}

static struct pids cgroup_pids(const struct record *r) {
  struct pids p = {0};
  for (int i = 0; i < r->nh; i++) walk_pids(r->h[i].path, &p, 0);
  if (p.n) qsort(p.v, (size_t)p.n, sizeof *p.v, cmp_long);
  return p;
}

/* removeTree: children first; a missing directory is fine. Returns 0, or 1 for EBUSY. */
static int remove_tree(const char *dir, int depth) {
  if (depth > 64) handoff("cgroup tree too deep");
  int child = depth + 1;
  int r = each_subdir(dir, remove_one, &child);
  if (r < 0) return 0;
  if (r) return 1;
  if (rmdir(dir) < 0) {
    if (errno == ENOENT) return 0;
    if (errno == EBUSY) return 1;
    handoff("cannot remove a cgroup directory");
  }
  return 0;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}
static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * Cgroup.destroy() for a cgroup with no processes left: rmdir every hierarchy, retrying EBUSY as
 * the runtime does. Processes left (a shared pid namespace, say) need the runtime's freeze + kill +
 * thaw, and a cgroup still busy at the deadline needs its error message: both are hand-overs, which
 * is safe because every step so far (SIGKILL of the init, rmdirs) is one the runtime would redo the
 * same way or find done.
 */
static void destroy_cgroup(const struct record *r) {
  long deadline = now_ms() + 3000, delay = 5;
  for (;;) {
    struct pids p = cgroup_pids(r);
    for (int i = 0; i < p.n; i++)
      if (p.v[i] != (long)getpid()) handoff("processes left in the cgroup");
    free(p.v);
    int busy = 0;
    for (int i = 0; i < r->nh; i++) busy |= remove_tree(r->h[i].path, 0);
    if (!busy) return;
    if (now_ms() > deadline) handoff("cgroup still busy");
    sleep_ms(delay);
    delay = delay * 2 > 100 ? 100 : delay * 2;
  }
}

/* ---- the store: src/runtime/state.ts ------------------------------------------------------------ */

enum status { ST_CREATING, ST_CREATED, ST_RUNNING, ST_PAUSED, ST_STOPPED };
static const char *STATUS[] = {"creating", "created", "running", "paused", "stopped"};

static int fifo_exists(const char *root, const char *id) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s/exec.fifo", root, id);
  struct stat st;
  return stat(path, &st) == 0;
}

/* ContainerStore.status: frozen -> paused; init gone, a zombie or a reused pid -> stopped; fifo -> created. */
static enum status status_full(const char *root, const char *id, const struct record *r) {
  if (r->creating) return r->pid > 0 && alive(r->pid, r->start_time) ? ST_CREATING : ST_STOPPED;
  if (!alive(r->pid, r->start_time)) return ST_STOPPED;
  if (r->has_cgroup && frozen(r)) return ST_PAUSED;
  if (fifo_exists(root, id)) return ST_CREATED;
  return ST_RUNNING;
}

/* rm -rf <root>/<id> without following symlinks; state.json goes last so a failure leaves a loadable record. */
static int rm_at(int dfd, const char *name, int depth) {
  if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT) return 0;
  if (errno != EISDIR && errno != EPERM) return -1;
  if (depth > 32) {
    errno = ELOOP;
    return -1;
  }
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -1;
  }
  struct dirent *e;
  int rc = 0;
  while (rc == 0 && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) rc = rm_at(fd, e->d_name, depth + 1);
  closedir(d);
  if (rc) return -1;
  if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) return -1;
  return 0;
}

static void remove_state_dir(const char *root, const char *id) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/%s", root, id);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return;
    handoff("cannot open the state dir");
  }
  DIR *d = fdopendir(fd);
  if (!d) handoff("cannot list the state dir");
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "state.json") && rm_at(fd, e->d_name, 0) < 0)
      handoff("cannot empty the state dir"); /* state.json is still there: the runtime redoes the delete */
  closedir(d);
  const char *text, *code;
  snprintf(dir, sizeof dir, "%s/%s/state.json", root, id);
  if (unlink(dir) < 0 && errno != ENOENT) {
    code = uv_code(errno, &text);
    fail("%s: %s, unlink '%s'", code, text, dir);
  }
  snprintf(dir, sizeof dir, "%s/%s", root, id);
  if (rmdir(dir) < 0 && errno != ENOENT) {
    code = uv_code(errno, &text);
    fail("%s: %s, rmdir '%s'", code, text, dir);
  }
}

/* process.kill: ESRCH is "already gone" (0); other failures are the command's error, as Node words it. */
static int signal_process(long pid, int sig) {
  if (kill((pid_t)pid, sig) == 0) return 1;
  if (errno == ESRCH) return 0;
  const char *text, *code = uv_code(errno, &text);
  (void)text;
  fail("kill %s", code);
}

/* ---- signals: src/runtime/signals.ts parseSignal --------------------------------------------- */

static const struct { const char *name; int n; } SIGNALS[] = {
  {"HUP", 1}, {"INT", 2}, {"QUIT", 3}, {"ILL", 4}, {"TRAP", 5}, {"ABRT", 6}, {"IOT", 6}, {"BUS", 7}, {"FPE", 8},
  {"KILL", 9}, {"USR1", 10}, {"SEGV", 11}, {"USR2", 12}, {"PIPE", 13}, {"ALRM", 14}, {"TERM", 15}, {"STKFLT", 16},
  {"CHLD", 17}, {"CLD", 17}, {"CONT", 18}, {"STOP", 19}, {"TSTP", 20}, {"TTIN", 21}, {"TTOU", 22}, {"URG", 23},
  {"XCPU", 24}, {"XFSZ", 25}, {"VTALRM", 26}, {"PROF", 27}, {"WINCH", 28}, {"IO", 29}, {"POLL", 29}, {"PWR", 30},
  {"SYS", 31},
};
#define SIGRTMIN_ 34
#define SIGRTMAX_ 64

/* Value of a digit string, or -1 when it is above 1000 (out of every signal range anyway). */
static long small_num(const char *s, size_t n) {
  while (n > 1 && *s == '0') s++, n--;
  if (n > 4) return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) v = v * 10 + (s[i] - '0');
  return v > 1000 ? -1 : v;
}
static int all_digits(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i])) return 0;
  return 1;
}

static int parse_signal(const char *arg) {
  char raw[64];
  const char *s = arg;
  while (*s && isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  struct buf m = {0};
  bputs(&m, "invalid signal ");
  bjson(&m, arg);
  if (n >= sizeof raw) fail("%s", m.p);
  memcpy(raw, s, n);
  raw[n] = 0;
  if (all_digits(raw, n)) {
    long v = small_num(raw, n);
    if (v < 1 || v > SIGRTMAX_) fail("%s", m.p);
    free(m.p);
    return (int)v;
  }
  for (size_t i = 0; i < n; i++) raw[i] = (char)toupper((unsigned char)raw[i]);
  char *name = raw;
  if (strncmp(name, "SIG", 3) == 0) name += 3;
  for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++)
    if (strcmp(name, SIGNALS[i].name) == 0) {
      free(m.p);
      return SIGNALS[i].n;
    }
  if (strncmp(name, "RTMIN", 5) == 0 || strncmp(name, "RTMAX", 5) == 0) {
    int min = name[3] == 'I';
    const char *rest = name + 5;
    long k = 0;
    char sign = 0;
    if (*rest) {
      sign = *rest;
      if ((sign != '+' && sign != '-') || !all_digits(rest + 1, strlen(rest + 1))) fail("%s", m.p);
      k = small_num(rest + 1, strlen(rest + 1));
      if (k < 0) fail("%s", m.p);
    }
    if (k != 0 && ((min && sign != '+') || (!min && sign != '-'))) fail("%s", m.p);
    long v = min ? SIGRTMIN_ + k : SIGRTMAX_ - k;
    if (v < SIGRTMIN_ || v > SIGRTMAX_) fail("%s", m.p);
    free(m.p);
    return (int)v;
  }
  fail("%s", m.p);
}

/* ---- commands ---------------------------------------------------------------------------------- */

static const char *g_root;

static void need_record(const char *id, struct record *r) {
  if (load_record(g_root, id, r) == 1) fail("container \"%s\" does not exist", id);
}

static int cmd_state(const char *id) {
  struct record r;
  need_record(id, &r);
  enum status s = status_full(g_root, id, &r);
  struct buf b = {0};
#define RAW(tok) bput(&b, J[tok].s, J[tok].n)
  bprintf(&b, "{\n  \"ociVersion\": \"" STATE_OCI_VERSION "\",\n  \"id\": ");
  RAW(r.id_tok);
  bprintf(&b, ",\n  \"pid\": %ld,\n  \"status\": \"%s\",\n  \"bundle\": ", s == ST_STOPPED ? 0L : r.pid, STATUS[s]);
  RAW(r.bundle_tok);
  bputs(&b, ",\n  \"rootfs\": ");
  RAW(r.rootfs_tok);
  bputs(&b, ",\n  \"created\": ");
  RAW(r.created_tok);
  bputs(&b, ",\n  \"owner\": ");
  RAW(r.owner_tok);
  if (r.annotations >= 0) {
    bputs(&b, ",\n  \"annotations\": {");
    for (int c = J[r.annotations].child; c >= 0; c = J[c].next) {
      bputs(&b, c == J[r.annotations].child ? "\n    " : ",\n    ");
      RAW(J[c].key);
      bputs(&b, ": ");
      RAW(c);
    }
    bputs(&b, "\n  }");
  }
#undef RAW
  bputs(&b, "\n}\n");
  out(b.p, b.n);
  return 0;
}

static int cmd_start(const char *id) {
  struct record r;
  need_record(id, &r);
  enum status s = status_full(g_root, id, &r);
  if (s == ST_STOPPED) fail("cannot start a container that has stopped");
  if (s != ST_CREATED) fail("cannot start a container in the %s state", STATUS[s]);
  if (has_hooks(&r, "poststart")) handoff("poststart hooks");
  char fifo[PATH_MAX];
  snprintf(fifo, sizeof fifo, "%s/%s/exec.fifo", g_root, id);
  int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) handoff("cannot open exec.fifo"); /* nothing done yet: the runtime words the error */
  long delay = 0;
  for (;;) {
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n == 1) break;
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      const char *text, *code = uv_code(errno, &text);
      fail("%s: %s, read", code, text);
    }
    /* The init may have written its byte, exec'd and exited between two reads: the byte stays in
       the fifo while we hold it open, so read once more before calling it dead. */
    if (!alive(r.pid, r.start_time)) {
      if (read(fd, &c, 1) == 1) break;
      fail("container %s init process exited before start", id);
    }
    struct stat st;
    if (stat(fifo, &st) != 0) fail("container %s was started by another caller", id);
    sleep_ms(delay);
    delay = delay + 1 > 10 ? 10 : delay + 1;
  }
  close(fd);
  unlink(fifo); /* a concurrent start may have removed it */
  return 0;
}

static int cmd_kill(const char *id, const char *sigarg, int all) {
  int sig = parse_signal(sigarg ? sigarg : "SIGTERM");
  struct record r;
  need_record(id, &r);
  enum status s = status_full(g_root, id, &r);
  if (s == ST_STOPPED && !all) fail("container not running");
  if (all && r.has_cgroup) {
    if (s == ST_PAUSED && sig == SIGKILL) handoff("kill --all KILL of a paused container thaws it");
    struct pids p = cgroup_pids(&r);
    for (int i = 0; i < p.n; i++) signal_process(p.v[i], sig);
    free(p.v);
    return 0;
  }
  if (all) handoff("kill --all without a cgroup");
  if (!signal_process(r.pid, sig)) fail("container not running");
  return 0;
}

static int cmd_delete(const char *id, int force) {
  struct record r;
  if (load_record(g_root, id, &r) == 1) {
    if (!force) fail("container \"%s\" does not exist", id);
    char dir[PATH_MAX];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/%s", g_root, id);
    if (lstat(dir, &st) == 0 || errno != ENOENT) handoff("leftover state dir without state.json");
    return 0; /* nothing there: rmSync with force is a no-op */
  }
  enum status s = status_full(g_root, id, &r);
  if ((s == ST_RUNNING || s == ST_PAUSED || s == ST_CREATING) && !force)
    fail("cannot delete container %s that is not stopped: %s", id, STATUS[s]);
  if (has_hooks(&r, "poststop")) handoff("poststop hooks");
  if (s == ST_PAUSED) handoff("delete of a paused container thaws it");
  if (s != ST_STOPPED) {
    signal_process(r.pid, SIGKILL);
    long deadline = now_ms() + 10000, delay = 1;
    while (alive(r.pid, r.start_time)) {
      if (now_ms() > deadline) fail("container %s init %ld did not die after SIGKILL", id, r.pid);
      sleep_ms(delay);
      delay = delay * 2 > 20 ? 20 : delay * 2;
    }
  }
  if (r.has_cgroup) destroy_cgroup(&r);
  remove_state_dir(g_root, id);
  return 0;
}

/* `ps` (table): run ps(1), keep its header and the lines whose PID column is one of ours. */
static int cmd_ps_table(struct pids *p, char **args, int nargs) {
  int po[2], pe[2];
  if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) handoff("pipe");
  char *argvps[nargs + 3];
  argvps[0] = "ps";
  int k = 1;
  if (nargs == 0) argvps[k++] = "-ef";
  for (int i = 0; i < nargs; i++) argvps[k++] = args[i];
  argvps[k] = NULL;
  pid_t c = fork();
  if (c < 0) handoff("fork");
  if (c == 0) {
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) dup2(nul, 0);
    dup2(po[1], 1);
    dup2(pe[1], 2);
    signal(SIGPIPE, SIG_DFL);
    execvp("ps", argvps);
    _exit(127);
  }
  close(po[1]);
  close(pe[1]);
  struct buf o = {0}, e = {0};
  struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
  struct buf *bufs[2] = {&o, &e};
  /* drain both pipes as they fill, as spawnSync does, so neither can stall ps */
  for (int open_fds = 2; open_fds > 0;) {
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      handoff("poll");
    }
    for (int i = 0; i < 2; i++) {
      if (pf[i].fd < 0 || !pf[i].revents) continue;
      char chunk[8192];
      ssize_t n = read(pf[i].fd, chunk, sizeof chunk);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        close(pf[i].fd);
        pf[i].fd = -1;
        open_fds--;
        continue;
      }
      if (bufs[i]->n + (size_t)n > PS_MAX_BUFFER) {
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
        handoff("ps output over maxBuffer");
      }
      bput(bufs[i], chunk, (size_t)n);
    }
  }
  int wst;
  while (waitpid(c, &wst, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) handoff("ps failed");
  /* Node reads both as UTF-8 and writes them back: the same bytes exactly when they are valid UTF-8 */
  if (!utf8_valid(e.p, e.n)) handoff("ps error output is not UTF-8");
  if (!o.p) bputs(&o, "");
  /* find the PID column in the header */
  char *nl = strchr(o.p, '\n');
  size_t hlen = nl ? (size_t)(nl - o.p) : o.n;
  char *header = strndup(o.p, hlen), *hcopy = strdup(header);
  for (const char *h = header; *h; h++)
    if ((unsigned char)*h >= 0x80) handoff("non-ASCII ps header");
  int col = -1, idx = 0;
  for (char *t = strtok(hcopy, " \t\n\v\f\r"); t; t = strtok(NULL, " \t\n\v\f\r"), idx++)
    if (strcmp(t, "PID") == 0) {
      col = idx;
      break;
    }
  if (col < 0) handoff("no PID column");
  struct buf res = {0};
  bputs(&res, header);
  for (char *line = nl ? nl + 1 : NULL; line;) {
    char *next = strchr(line, '\n');
    if (next) *next = 0;
    char *copy = strdup(line), *field = NULL;
    int f = 0;
    for (char *t = strtok(copy, " \t\n\v\f\r"); t; t = strtok(NULL, " \t\n\v\f\r"), f++)
      if (f == col) {
        field = t;
        break;
      }
    /* JavaScript's \s and trim() also take Unicode spaces (U+00A0, U+2000…): columns split the same
       way only if the line is ASCII up to the end of the PID field (a command line after it is the
       container's to choose and may hold anything) */
    size_t upto = field ? (size_t)(field - copy) + strlen(field) : strlen(line);
    for (size_t i = 0; i < upto; i++)
      if ((unsigned char)line[i] >= 0x80) handoff("non-ASCII ps output before the PID column");
    if (field) {
      size_t fl = strlen(field);
      int digits = 0;
      for (size_t i = 0; i < fl; i++) digits += isdigit((unsigned char)field[i]) != 0;
      if (digits && (size_t)digits != fl) handoff("PID column that is not plain digits");
      if (digits == (int)fl && fl > 0) {
        if (fl > 15) handoff("PID column too long");
        long v = strtol(field, NULL, 10);
        for (int i = 0; i < p->n; i++)
          if (p->v[i] == v) {
            if (!utf8_valid(line, strlen(line))) handoff("ps line is not UTF-8");
            bputs(&res, "\n");
            bputs(&res, line);
            break;
          }
      }
    }
    free(copy);
    line = next ? next + 1 : NULL;
  }
  bputs(&res, "\n");
  if (e.n) write_all(2, e.p, e.n, NULL);
  out(res.p, res.n);
  return 0;
}

static int cmd_ps(const char *id, const char *format, char **args, int nargs) {
  struct record r;
  need_record(id, &r);
  if (!r.has_cgroup) fail("container %s has no cgroup", id);
  struct pids p = cgroup_pids(&r);
  const char *fmt = format ? format : "table";
  if (strcmp(fmt, "json") == 0) {
    struct buf b = {0};
    bputs(&b, "[");
    for (int i = 0; i < p.n; i++) bprintf(&b, i ? ",%ld" : "%ld", p.v[i]);
    bputs(&b, "]\n");
    out(b.p, b.n);
    return 0;
  }
  if (strcmp(fmt, "table") != 0) {
    struct buf m = {0};
    bjson(&m, fmt);
    fail("ps: invalid format %s: use table or json", m.p);
  }
  return cmd_ps_table(&p, args, nargs);
}

/* ---- main: runtimeMain's order of checks ------------------------------------------------------- */

static const struct flag GLOBAL[] = {
  {"root", NULL, 1}, {"log", NULL, 1}, {"log-format", NULL, 1}, {"debug", NULL, 0}, {"systemd-cgroup", NULL, 0},
  {"rootless", NULL, 1}, {"criu", NULL, 1}, {"version", "v", 0}, {"help", "h", 0},
};
enum { G_ROOT, G_LOG, G_LOGFMT, G_DEBUG, G_SYSTEMD, G_ROOTLESS, G_CRIU, G_VERSION, G_HELP };

static int has_dotdot(const char *p) {
  for (const char *s = p; (s = strstr(s, "..")); s += 2)
    if ((s == p || s[-1] == '/') && (s[2] == 0 || s[2] == '/')) return 1;
  return 0;
}

int main(int argc, char **argv) {
  g_argv = argv;
  const char *mode = getenv("PIER_RUNTIME_FRONT");
  if (mode && strcmp(mode, "0") == 0) handoff("PIER_RUNTIME_FRONT=0");
  /* Node ignores SIGPIPE: a closed stdout is an EPIPE error there, so here too. */
  signal(SIGPIPE, SIG_IGN);
  /* defaultRoot() differs for non-root callers, and rootless is not the front's business. */
  if (getuid() != 0) handoff("not root");
  /* Node decodes argv as UTF-8 (U+FFFD for bad bytes): only ASCII is reproduced byte for byte. */
  for (int i = 1; i < argc; i++)
    for (const unsigned char *s = (const unsigned char *)argv[i]; *s; s++)
      if (*s >= 0x80) handoff("non-ASCII argument");

  struct parsed g;
  if (parse_flags(argv, argc, 1, GLOBAL, sizeof GLOBAL / sizeof GLOBAL[0], &g) < 0) handoff("global flags");
  const char *fmt = g.val[G_LOGFMT] ? g.val[G_LOGFMT] : "text";
  if (strcmp(fmt, "text") && strcmp(fmt, "json")) handoff("--log-format");
  logcfg.json = strcmp(fmt, "json") == 0;
  logcfg.file = g.val[G_LOG];
  if (g.on[G_DEBUG]) handoff("--debug"); /* stacks of unexpected errors are Node's to print */
  if (g.on[G_VERSION] || g.on[G_HELP] || g.rest >= argc) handoff("version or help");
  const char *name = argv[g.rest];
  if (g.on[G_SYSTEMD]) handoff("--systemd-cgroup");
  g_root = g.val[G_ROOT] && *g.val[G_ROOT] ? g.val[G_ROOT] : DEFAULT_ROOT;
  /* posix.join normalises "..", the kernel follows symlinks first: keep to roots where both agree. */
  if (has_dotdot(g_root)) handoff("--root with ..");

  static const struct flag NONE[] = {{"help", "h", 0}};
  static const struct flag KILL[] = {{"all", "a", 0}, {"help", "h", 0}};
  static const struct flag DEL[] = {{"force", "f", 0}, {"help", "h", 0}};
  static const struct flag PS[] = {{"format", "f", 1}, {"help", "h", 0}};
  const struct flag *specs;
  int nspecs;
  if (!strcmp(name, "start") || !strcmp(name, "state")) specs = NONE, nspecs = 1;
  else if (!strcmp(name, "kill")) specs = KILL, nspecs = 2;
  else if (!strcmp(name, "delete")) specs = DEL, nspecs = 2;
  else if (!strcmp(name, "ps")) specs = PS, nspecs = 2;
  else handoff("not a front command");
  struct parsed p;
  if (parse_flags(argv, argc, g.rest + 1, specs, nspecs, &p) < 0) handoff("command flags");
  if (p.on[nspecs - 1]) handoff("command help");
  int nrest = argc - p.rest;
  char **rest = argv + p.rest;
  /* idArg's empty-id error, and ids the store would refuse (tryLoad), are left to the runtime;
     control characters and quotes too, since messages carry the id */
  if (nrest < 1 || !rest[0][0]) handoff("no container id");
  const char *id = rest[0];
  if (!strcmp(id, ".") || !strcmp(id, "..")) handoff("id . or ..");
  for (const char *s = id; *s; s++)
    if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f) handoff("id the store refuses");
  if (!strcmp(name, "state")) return cmd_state(id);
  if (!strcmp(name, "start")) return cmd_start(id);
  if (!strcmp(name, "kill")) return cmd_kill(id, nrest > 1 ? rest[1] : NULL, p.on[0]);
  if (!strcmp(name, "delete")) return cmd_delete(id, p.on[0]);
  return cmd_ps(id, p.val[0], rest + 1, nrest - 1);
}
