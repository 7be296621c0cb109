/* Terminals: the pty is opened inside the container (its /dev/ptmx) and the master is passed
 * out with SCM_RIGHTS, either to the caller's console socket or to our parent, which then relays
 * its own stdio to it (`run -t` without a console socket). */
#include "pier.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

int console_sock = -1;
int relay_sock = -1;

void console_connect(const char *path) {
  if (!strcmp(path, "-")) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("console relay socketpair");
    relay_sock = sv[0];
    console_sock = sv[1];
    return;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) fail("connect console socket %s: path too long", path);
  strcpy(sa.sun_path, path);
  if ((console_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) die("console socket");
  if (connect(console_sock, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect console socket %s", path);
}

void console_setup(const struct op *o) {
  if (console_sock < 0) fail("plan: CONSOLE_SETUP without CONSOLE_CONNECT");
  const char *ptmx = o->a[0].s;
  int master = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) die("open %s", ptmx);
  int unlock = 0, n;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) die("unlock pty");
  if (ioctl(master, TIOCGPTN, &n) < 0) die("get pty number");
  struct winsize ws = {.ws_row = (unsigned short)num(o, 1), .ws_col = (unsigned short)num(o, 2)};
  if (ws.ws_row && ws.ws_col && ioctl(master, TIOCSWINSZ, &ws) < 0) die("set pty size");
  /* TIOCGPTPEER opens the peer of this very master, with no path lookup in /dev/pts */
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0) die("open pty peer");

  char name[64];
  int len = snprintf(name, sizeof name, "/dev/pts/%d", n);
  struct iovec iov = {.iov_base = name, .iov_len = (size_t)len};
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &master, sizeof(int));
  if (sendmsg(console_sock, &msg, MSG_NOSIGNAL) < 0) die("send pty master on console socket");
  close(master);
  close(console_sock);
  console_sock = -1;

  /* programs that open /dev/console directly should reach the same terminal */
  if (o->argc > 3 && *o->a[3].s) mnt_bind_file(name, o->a[3].s);
  if (ioctl(slave, TIOCSCTTY, 0) < 0) die("set controlling terminal");
  for (int fd = 0; fd < 3; fd++) if (dup2(slave, fd) < 0) die("dup pty to fd %d", fd);
  if (slave > 2) close(slave);
}

static int recv_fd(int sock) {
  char data[128];
  struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

static struct termios saved_tio;
static int raw_set;

static void restore_tty(void) { if (raw_set) tcsetattr(0, TCSANOW, &saved_tio); }

static void copy_winsize(int master) {
  struct winsize ws;
  if (master >= 0 && ioctl(0, TIOCGWINSZ, &ws) == 0) ioctl(master, TIOCSWINSZ, &ws);
}

/* Move what is readable on `from` to `to`: 1 moved, 0 EOF or error, -1 nothing right now. */
static int pump(int from, int to) {
  char buf[8192];
  ssize_t n = read(from, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return -1;
  if (n <= 0) return 0;
  (void)write_all(to, buf, (size_t)n);
  return 1;
}

/* Parent loop in wait mode: forward signals, relay the console if any, return the wait status. */
int relay_run(pid_t child, int sigfd) {
  int master = -1, in_open = 1, status = 0, done = 0;
  if (relay_sock >= 0 && isatty(0) && tcgetattr(0, &saved_tio) == 0) {
    struct termios raw = saved_tio;
    cfmakeraw(&raw);
    if (tcsetattr(0, TCSANOW, &raw) == 0) raw_set = 1;
  }
  while (!done) {
    struct pollfd p[4];
    int n = 0, isig = -1, isock = -1, iin = -1, imaster = -1;
    if (sigfd >= 0) { isig = n; p[n++] = (struct pollfd){.fd = sigfd, .events = POLLIN}; }
    if (relay_sock >= 0) { isock = n; p[n++] = (struct pollfd){.fd = relay_sock, .events = POLLIN}; }
    if (master >= 0 && in_open) { iin = n; p[n++] = (struct pollfd){.fd = 0, .events = POLLIN}; }
    if (master >= 0) { imaster = n; p[n++] = (struct pollfd){.fd = master, .events = POLLIN}; }
    if (sigfd < 0 && n == 0) { waitpid(child, &status, 0); break; }
    if (poll(p, (nfds_t)n, -1) < 0) { if (errno == EINTR) continue; break; }
    if (isock >= 0 && p[isock].revents) {
      master = recv_fd(relay_sock);
      close(relay_sock);
      relay_sock = -1;
      copy_winsize(master);
    }
    if (iin >= 0 && p[iin].revents && !pump(0, master)) in_open = 0;
    if (imaster >= 0 && p[imaster].revents && !pump(master, 1)) { close(master); master = -1; }
    if (isig >= 0 && p[isig].revents) {
      struct signalfd_siginfo si;
      if (read(sigfd, &si, sizeof si) != sizeof si) continue;
      if (si.ssi_signo == SIGWINCH) copy_winsize(master);
      else if (si.ssi_signo != SIGCHLD) kill(child, (int)si.ssi_signo);
      if (waitpid(child, &status, WNOHANG) == child) done = 1;
    }
  }
  if (master >= 0) { /* drain what the container wrote before it exited */
    fcntl(master, F_SETFL, O_NONBLOCK);
    while (pump(master, 1) == 1) {}
  }
  restore_tty();
  return status;
}
