/* Synchronisation with the Node side and the hooks that run inside the container's namespaces. */
#include "pier.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *state;       /* the latest `state <json>`, given to hooks on stdin */
static size_t state_len;

/* Read lines from infd until `go`; remember `state` lines. */
void hook_sync_wait(void) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf) die("sync");
  for (;;) {
    char *nl;
    while ((nl = memchr(buf, '\n', len))) {
      size_t l = (size_t)(nl - buf);
      if (l == 2 && !memcmp(buf, "go", 2)) { free(buf); return; } /* Node sends nothing after go until we answer */
      if (l >= 6 && !memcmp(buf, "state ", 6)) {
        free(state);
        if (!(state = malloc(l - 6 + 1))) die("sync");
        memcpy(state, buf + 6, l - 6);
        state_len = l - 6;
      } else {
        fail("sync: unexpected message from runtime: %.*s", (int)(l > 80 ? 80 : l), buf);
      }
      memmove(buf, nl + 1, len - l - 1);
      len -= l + 1;
    }
    if (len == cap && !(buf = realloc(buf, cap *= 2))) die("sync");
    ssize_t n = read(infd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("sync: read");
    if (n == 0) fail("sync: runtime went away before start");
    len += (size_t)n;
  }
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* HOOK path timeout nargs args... env...: the hook gets the state on stdin; its output is kept
 * (last 1 KiB) for the error message, as callers only see the one error line. */
void hook_run(const struct op *o) {
  const char *path = o->a[0].s;
  long long timeout = (long long)num(o, 1);
  unsigned nargs = (unsigned)num(o, 2);
  if (3u + nargs > o->argc) fail("plan: HOOK %s has fewer args than announced", path);
  char **argv = calloc(nargs + 2u, sizeof *argv), **envp = calloc(o->argc + 1u, sizeof *envp);
  if (!argv || !envp) die("hook %s", path);
  for (unsigned i = 0; i < nargs; i++) argv[i] = o->a[3 + i].s;
  if (!nargs) argv[0] = (char *)path;
  for (unsigned i = 3 + nargs, k = 0; i < o->argc; i++) envp[k++] = o->a[i].s;

  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) die("hook %s: pipe", path);
  pid_t pid = fork();
  if (pid < 0) die("hook %s: fork", path);
  if (pid == 0) {
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0) _exit(127);
    execve(path, argv, envp);
    dprintf(2, "exec %s: %s", path, strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  signal(SIGPIPE, SIG_IGN); /* a hook that does not read its stdin is fine */
  if (state) (void)write_all(in[1], state, state_len);
  close(in[1]);
  signal(SIGPIPE, SIG_DFL);

  char tail[1024], buf[512];
  size_t tl = 0;
  ssize_t n;
  long long deadline = timeout > 0 ? now_ms() + timeout * 1000 : -1;
  int open_out = 1, status = 0;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    long long left = deadline < 0 ? 100 : deadline - now_ms();
    if (left <= 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail("hook %s: timed out after %lld s", path, timeout);
    }
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    if (poll(&p, open_out ? 1 : 0, left < 100 ? (int)left : 100) > 0) {
      if ((n = read(out[0], buf, sizeof buf)) <= 0) open_out = 0;
      for (ssize_t i = 0; i < n; i++) {
        if (tl == sizeof tail) { memmove(tail, tail + 512, 512); tl = 512; }
        tail[tl++] = buf[i];
      }
    }
  }
  /* what is left in the pipe; a daemonised grandchild may hold it open, so do not block */
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  while ((n = read(out[0], buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++) {
      if (tl == sizeof tail) { memmove(tail, tail + 512, 512); tl = 512; }
      tail[tl++] = buf[i];
    }
  close(out[0]);
  while (tl && (tail[tl - 1] == '\n' || tail[tl - 1] == ' ')) tl--;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (WIFSIGNALED(status)) fail("hook %s: killed by signal %d%s%.*s", path, WTERMSIG(status), tl ? ": " : "", (int)tl, tail);
  fail("hook %s: exit status %d%s%.*s", path, WEXITSTATUS(status), tl ? ": " : "", (int)tl, tail);
}
