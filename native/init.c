/*
 * pier-init: the container's PID 1 for `pier run --init` (docker's docker-init/tini role).
 * A process that is PID 1 gets no default signal handling and inherits every orphan, so a plain
 * application as PID 1 ignores SIGTERM and leaves zombies. This forks the command, forwards the
 * signals it receives to it, reaps every child, and exits with the command's status.
 * Built static: it is bind-mounted into images that have no libc, and it is the whole of the
 * local pause image of pods (`pier-init --pause`, below).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * --pause: a pod's infra process (Kubernetes' pause container). It holds the pod's namespaces
 * open and does nothing else: it reaps whatever is reparented to it (a pod sharing its PID
 * namespace makes it everyone's PID 1) and exits 0 at SIGTERM or SIGINT, at once.
 */
static int pause_forever(void) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig == SIGTERM || sig == SIGINT) return 0;
    if (sig == SIGCHLD)
      while (waitpid(-1, NULL, WNOHANG) > 0) {
      }
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--pause") == 0) return pause_forever();
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
  if (first >= argc) {
    fprintf(stderr, "pier-init: usage: pier-init [--] command [args...]\n");
    return 2;
  }
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t child = fork();
  if (child < 0) {
    perror("pier-init: fork");
    return 1;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* Own process group, so a terminal's job control reaches the command, not us. */
    setpgid(0, 0);
    execvp(argv[first], argv + first);
    fprintf(stderr, "pier-init: exec %s: %s\n", argv[first], strerror(errno));
    _exit(127);
  }
  for (;;) {
    int sig = 0;
    struct timespec tick = {1, 0};
    siginfo_t info;
    sig = sigtimedwait(&all, &info, &tick);
    if (sig > 0 && sig != SIGCHLD) kill(child, sig);
    for (;;) {
      int status;
      pid_t p = waitpid(-1, &status, WNOHANG);
      if (p <= 0) break;
      if (p == child) {
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
      }
    }
  }
}
