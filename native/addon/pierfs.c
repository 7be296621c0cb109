/*
 * pierfs: the filesystem syscalls Node's fs module lacks, as a tiny N-API addon.
 * mknod/mkfifo (device nodes and whiteouts), l*xattr on Buffers (binary values such as
 * security.capability), lsetmeta (owner + mode + nanosecond mtime in one call, never following
 * symlinks) and fsetmeta (the same on an open fd), mount/umount2 (overlay snapshots), sendfile (a file range to a socket from a thread of
 * its own, for the registry's blob GETs and pushes), recvToFile (a request body straight from the
 * socket into a file, hashed on the way, for blob uploads), recvInto (a download into big Buffers),
 * sha256 states that can be copied, and syncFileRange (early writeback). Errors are thrown like
 * Node's own: an Error whose message is "ECODE: strerror, syscall 'path'" with .code, .errno,
 * .syscall and .path set.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
/* Node's OpenSSL: the low-level SHA256_* calls are deprecated in 3.x but exported, and plain structs */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#define PATH_BUF 4096
#define NAME_BUF 256

static napi_value errno_error(napi_env env, int err, const char *syscall, const char *path) {
  const char *code = strerrorname_np(err);
  if (code == NULL) code = "EUNKNOWN";
  char msg[PATH_BUF + 128];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", code, strerror(err), syscall, path ? path : "");
  napi_value jmsg, jcode, error, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode);
  napi_create_error(env, jcode, jmsg, &error);
  napi_set_named_property(env, error, "code", jcode);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, error, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "syscall", v);
  if (path) {
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, error, "path", v);
  }
  return error;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  napi_throw(env, errno_error(env, err, syscall, path));
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* Copies a JS string argument into buf; false (with a TypeError thrown) if it is not one or too long. */
static int get_str(napi_env env, napi_value v, char *buf, size_t cap, const char *what) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a string", what);
    throw_type(env, msg);
    return 0;
  }
  if (len >= cap - 1) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s is too long", what);
    throw_type(env, msg);
    return 0;
  }
  return 1;
}

static int get_i64(napi_env env, napi_value v, int64_t *out, const char *what) {
  if (napi_get_value_int64(env, v, out) != napi_ok) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a number", what);
    throw_type(env, msg);
    return 0;
  }
  return 1;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) {
    char msg[64];
    snprintf(msg, sizeof msg, "expected %zu arguments", want);
    throw_type(env, msg);
    return 0;
  }
  return 1;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* mknod(path, mode, dev): mode includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_BUF];
  int64_t mode, dev;
  if (!get_args(env, info, 3, argv) || !get_str(env, argv[0], path, sizeof path, "path") ||
      !get_i64(env, argv[1], &mode, "mode") || !get_i64(env, argv[2], &dev, "dev"))
    return NULL;
  if (mknod(path, (mode_t)mode, (dev_t)dev) != 0) return throw_errno(env, errno, "mknod", path);
  return undefined(env);
}

static napi_value js_mkfifo(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[PATH_BUF];
  int64_t mode;
  if (!get_args(env, info, 2, argv) || !get_str(env, argv[0], path, sizeof path, "path") ||
      !get_i64(env, argv[1], &mode, "mode"))
    return NULL;
  if (mkfifo(path, (mode_t)mode) != 0) return throw_errno(env, errno, "mkfifo", path);
  return undefined(env);
}

/* makedev(major, minor) with glibc's encoding; numbers stay below 2^53 for any real device. */
static napi_value js_makedev(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  int64_t ma, mi;
  if (!get_args(env, info, 2, argv) || !get_i64(env, argv[0], &ma, "major") || !get_i64(env, argv[1], &mi, "minor"))
    return NULL;
  napi_create_int64(env, (int64_t)makedev((unsigned)ma, (unsigned)mi), &out);
  return out;
}

static napi_value js_devsplit(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, v;
  int64_t dev;
  if (!get_args(env, info, 1, argv) || !get_i64(env, argv[0], &dev, "dev")) return NULL;
  napi_create_array_with_length(env, 2, &out);
  napi_create_uint32(env, major((dev_t)dev), &v);
  napi_set_element(env, out, 0, v);
  napi_create_uint32(env, minor((dev_t)dev), &v);
  napi_set_element(env, out, 1, v);
  return out;
}

/* lsetxattr(path, name, value: Buffer, flags?) */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  char path[PATH_BUF], name[NAME_BUF];
  void *data = NULL;
  size_t len = 0;
  int64_t flags = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_type(env, "expected 3 arguments");
  if (!get_str(env, argv[0], path, sizeof path, "path") || !get_str(env, argv[1], name, sizeof name, "name")) return NULL;
  bool isbuf = false;
  napi_is_buffer(env, argv[2], &isbuf);
  if (!isbuf) return throw_type(env, "value must be a Buffer");
  napi_get_buffer_info(env, argv[2], &data, &len);
  if (argc > 3 && !get_i64(env, argv[3], &flags, "flags")) return NULL;
  if (lsetxattr(path, name, len ? data : "", len, (int)flags) != 0) return throw_errno(env, errno, "lsetxattr", path);
  return undefined(env);
}

/* fsetxattr(fd, name, value[, flags]): on an open fd, so no name is looked up again. */
static napi_value js_fsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  char name[NAME_BUF];
  void *data = NULL;
  size_t len = 0;
  int64_t fd, flags = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return throw_type(env, "expected 3 arguments");
  if (!get_i64(env, argv[0], &fd, "fd") || !get_str(env, argv[1], name, sizeof name, "name")) return NULL;
  bool isbuf = false;
  napi_is_buffer(env, argv[2], &isbuf);
  if (!isbuf) return throw_type(env, "value must be a Buffer");
  napi_get_buffer_info(env, argv[2], &data, &len);
  if (argc > 3 && !get_i64(env, argv[3], &flags, "flags")) return NULL;
  if (fsetxattr((int)fd, name, len ? data : "", len, (int)flags) != 0) return throw_errno(env, errno, "fsetxattr", name);
  return undefined(env);
}

/*
 * The file an xattr call is about: a path (not followed at its end) or, when JS gives a number, an
 * open fd (fgetxattr/flistxattr: nothing is looked up again).
 */
static int get_target(napi_env env, napi_value v, int *fd, char *path, size_t size) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_number) {
    int64_t n;
    if (!get_i64(env, v, &n, "fd")) return 0;
    *fd = (int)n;
    snprintf(path, size, "fd %d", *fd);
    return 1;
  }
  *fd = -1;
  return get_str(env, v, path, size, "path");
}

static ssize_t x_get(int fd, const char *path, const char *name, void *buf, size_t n) {
  return fd >= 0 ? fgetxattr(fd, name, buf, n) : lgetxattr(path, name, buf, n);
}

static ssize_t x_list(int fd, const char *path, char *buf, size_t n) {
  return fd >= 0 ? flistxattr(fd, buf, n) : llistxattr(path, buf, n);
}

/* lgetxattr(path | fd, name) → Buffer, or null when the attribute is absent. */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  char path[PATH_BUF], name[NAME_BUF];
  int fd;
  if (!get_args(env, info, 2, argv) || !get_target(env, argv[0], &fd, path, sizeof path) ||
      !get_str(env, argv[1], name, sizeof name, "name"))
    return NULL;
  char small[256];
  ssize_t n = x_get(fd, path, name, small, sizeof small);
  if (n >= 0) {
    void *dst;
    napi_create_buffer_copy(env, (size_t)n, small, &dst, &out);
    return out;
  }
  for (;;) {
    if (errno == ENODATA) {
      napi_get_null(env, &out);
      return out;
    }
    if (errno != ERANGE) return throw_errno(env, errno, "lgetxattr", path);
    ssize_t size = x_get(fd, path, name, NULL, 0);
    if (size < 0) continue;
    char *buf = malloc((size_t)size + 1);
    if (!buf) return throw_errno(env, ENOMEM, "lgetxattr", path);
    n = x_get(fd, path, name, buf, (size_t)size + 1);
    if (n >= 0) {
      void *dst;
      napi_create_buffer_copy(env, (size_t)n, buf, &dst, &out);
      free(buf);
      return out;
    }
    free(buf);
  }
}

/* llistxattr(path | fd) → string[] */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  char path[PATH_BUF];
  int fd;
  if (!get_args(env, info, 1, argv) || !get_target(env, argv[0], &fd, path, sizeof path)) return NULL;
  char small[1024];
  char *buf = small;
  ssize_t n = x_list(fd, path, small, sizeof small);
  while (n < 0) {
    if (errno != ERANGE) {
      int err = errno;
      if (buf != small) free(buf);
      return throw_errno(env, err, "llistxattr", path);
    }
    ssize_t size = x_list(fd, path, NULL, 0);
    if (size < 0) return throw_errno(env, errno, "llistxattr", path);
    if (buf != small) free(buf);
    buf = malloc((size_t)size + 1);
    if (!buf) return throw_errno(env, ENOMEM, "llistxattr", path);
    n = x_list(fd, path, buf, (size_t)size + 1);
  }
  napi_create_array(env, &out);
  uint32_t i = 0;
  for (ssize_t off = 0; off < n;) {
    size_t l = strnlen(buf + off, (size_t)(n - off));
    napi_value s;
    napi_create_string_utf8(env, buf + off, l, &s);
    napi_set_element(env, out, i++, s);
    off += (ssize_t)l + 1;
  }
  if (buf != small) free(buf);
  return out;
}

static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[PATH_BUF], name[NAME_BUF];
  if (!get_args(env, info, 2, argv) || !get_str(env, argv[0], path, sizeof path, "path") ||
      !get_str(env, argv[1], name, sizeof name, "name"))
    return NULL;
  if (lremovexattr(path, name) != 0) return throw_errno(env, errno, "lremovexattr", path);
  return undefined(env);
}

/*
 * lsetmeta(path, uid, gid, mode, mtimeSec, mtimeNsec): lchown, then chmod (mode < 0 skips it, as for
 * symlinks; chown clears set-id bits, so it must come first), then atime = mtime with nanoseconds.
 * One call instead of three keeps per-file overhead low when unpacking many small files.
 */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* Linux 6.6; glibc 2.36 does not name it */
#endif

/*
 * chmod that never follows a final symlink: the kernel's fchmodat2 (one syscall), else glibc's
 * AT_SYMLINK_NOFOLLOW emulation (O_PATH open, fstat, chmod through /proc, close). Either way a name
 * swapped for a symlink is refused (EOPNOTSUPP) instead of chmodding what it points to.
 */
static int chmod_nofollow(const char *path, mode_t mode) {
  static int have_fchmodat2 = 1;
  if (have_fchmodat2) {
    if (syscall(SYS_fchmodat2, AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW) == 0) return 0;
    if (errno != ENOSYS) return -1;
    have_fchmodat2 = 0;
  }
  return fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW);
}

static napi_value js_lsetmeta(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  char path[PATH_BUF];
  int64_t uid, gid, mode, sec, nsec;
  if (!get_args(env, info, 6, argv) || !get_str(env, argv[0], path, sizeof path, "path") ||
      !get_i64(env, argv[1], &uid, "uid") || !get_i64(env, argv[2], &gid, "gid") ||
      !get_i64(env, argv[3], &mode, "mode") || !get_i64(env, argv[4], &sec, "mtimeSec") ||
      !get_i64(env, argv[5], &nsec, "mtimeNsec"))
    return NULL;
  if (uid >= 0 && fchownat(AT_FDCWD, path, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) != 0)
    return throw_errno(env, errno, "lchown", path);
  /* never through a final symlink: if the last component became one since it was made, this is
   * refused instead of changing whatever the link points to */
  if (mode >= 0 && chmod_nofollow(path, (mode_t)mode) != 0) return throw_errno(env, errno, "chmod", path);
  struct timespec ts[2] = {{.tv_sec = sec, .tv_nsec = nsec}, {.tv_sec = sec, .tv_nsec = nsec}};
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0) return throw_errno(env, errno, "utimensat", path);
  return undefined(env);
}

/*
 * fsetmeta(fd, uid, gid, mode, mtimeSec, mtimeNsec): lsetmeta on an open file instead of a path, so
 * nothing is looked up again (a container that swaps a name for a symlink cannot redirect it). The
 * fd may be O_PATH (device nodes and fifos are never opened for I/O): chown goes through
 * AT_EMPTY_PATH and chmod/utimensat through the fd's /proc/self/fd link, which names this very inode.
 * A symlink's fd is refused (ELOOP): its metadata is set by name, relative to its directory's fd.
 */
static napi_value js_fsetmeta(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int64_t fd, uid, gid, mode, sec, nsec;
  if (!get_args(env, info, 6, argv) || !get_i64(env, argv[0], &fd, "fd") || !get_i64(env, argv[1], &uid, "uid") ||
      !get_i64(env, argv[2], &gid, "gid") || !get_i64(env, argv[3], &mode, "mode") ||
      !get_i64(env, argv[4], &sec, "mtimeSec") || !get_i64(env, argv[5], &nsec, "mtimeNsec"))
    return NULL;
  struct stat st;
  if (fstat((int)fd, &st) != 0) return throw_errno(env, errno, "fstat", NULL);
  if (S_ISLNK(st.st_mode)) return throw_errno(env, ELOOP, "fsetmeta", NULL);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", (int)fd);
  if (uid >= 0 && fchownat((int)fd, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH) != 0) return throw_errno(env, errno, "fchown", NULL);
  if (mode >= 0 && fchmod((int)fd, (mode_t)mode) != 0) {
    if (errno != EBADF || chmod(proc, (mode_t)mode) != 0) return throw_errno(env, errno, "fchmod", NULL);
  }
  if (sec >= 0) {
    struct timespec ts[2] = {{.tv_sec = sec, .tv_nsec = nsec}, {.tv_sec = sec, .tv_nsec = nsec}};
    if (futimens((int)fd, ts) != 0) {
      if (errno != EBADF || utimensat(AT_FDCWD, proc, ts, 0) != 0) return throw_errno(env, errno, "futimens", NULL);
    }
  }
  return undefined(env);
}

/* mount(source, target, fstype, flags, data) */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char source[PATH_BUF], target[PATH_BUF], fstype[64];
  static char data[PATH_BUF * 4];
  int64_t flags;
  if (!get_args(env, info, 5, argv) || !get_str(env, argv[0], source, sizeof source, "source") ||
      !get_str(env, argv[1], target, sizeof target, "target") || !get_str(env, argv[2], fstype, sizeof fstype, "fstype") ||
      !get_i64(env, argv[3], &flags, "flags") || !get_str(env, argv[4], data, sizeof data, "data"))
    return NULL;
  if (mount(source, target, fstype[0] ? fstype : NULL, (unsigned long)flags, data[0] ? data : NULL) != 0)
    return throw_errno(env, errno, "mount", target);
  return undefined(env);
}

static napi_value js_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char target[PATH_BUF];
  int64_t flags;
  if (!get_args(env, info, 2, argv) || !get_str(env, argv[0], target, sizeof target, "target") ||
      !get_i64(env, argv[1], &flags, "flags"))
    return NULL;
  if (umount2(target, (int)flags) != 0) return throw_errno(env, errno, "umount2", target);
  return undefined(env);
}

/*
 * Transfers between a connection and a file, each in a thread of its own (not libuv's pool: a slow
 * client must not hold a pool thread that fs calls need), for the registry's blob bodies.
 *
 * sendfile(socketFd, fileFd, offset, length, idleTimeoutMs, done(err, bytes)) → handle
 *   sendfile(2) of the file range to the socket, waiting with poll(POLLOUT) whenever the
 *   non-blocking socket is full.
 * recvToFile(socketFd, fileFd, length, sha256 | null, writebackEvery, idleTimeoutMs, done(err, bytes)) → handle
 *   reads exactly length bytes off the socket (poll(POLLIN) when none are there) and appends them
 *   to the file (opened O_APPEND), updating the sha256 state (a Buffer from sha256New) as it goes;
 *   every writebackEvery bytes (0: never) sync_file_range(SYNC_FILE_RANGE_WRITE) starts writeback.
 * recvInto(socketFd, buffer, offset, length, idleTimeoutMs, done(err, bytes)) → handle
 *   reads exactly length bytes off the socket into buffer[offset…] (a client's download).
 * transferCancel(handle): stop at once; a no-op once done has run.
 *
 * Both fds are dup'ed, so the caller may close its own at any time: the thread never touches an fd
 * number that could have been reused. done runs on the JS thread once the thread has finished: err
 * null after all length bytes, else an errno Error (ECANCELED after a cancel, ETIMEDOUT when the
 * socket moved nothing for idleTimeoutMs, EIO when the file ended early, ECONNRESET when the peer
 * closed before sending everything); bytes is what was moved either way. The sha256 state and the
 * recvInto buffer are held (napi references) and must not be used until done has run.
 */
enum { XFER_SEND, XFER_RECV, XFER_RECV_BUF };

typedef struct {
  int kind;
  int sock_fd, file_fd;
  int64_t off, left, moved, idle_ms, wb_every;
  SHA256_CTX *sha;
  napi_ref sha_ref;
  char *dest;         /* XFER_RECV_BUF: where the bytes go (a Buffer held by dest_ref) */
  napi_ref dest_ref;
  int err;
  atomic_int cancelled;
  int done;  /* JS thread: the fds are closed, done was called */
  int refs;  /* JS thread: one for the transfer, one for the handle */
  napi_threadsafe_function tsfn;
} xfer_job;

#define RECV_BUF (1 << 20)

static void xfer_unref(xfer_job *job) {
  if (--job->refs == 0) free(job);
}

static void xfer_handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  xfer_unref((xfer_job *)data);
}

/* Wait until fd is ready for events; false (job->err set) on cancel, timeout or error. */
static int xfer_wait(xfer_job *job, short events, int64_t *idle) {
  struct pollfd p = {.fd = job->sock_fd, .events = events};
  int r = poll(&p, 1, 1000);
  if (atomic_load(&job->cancelled)) {
    job->err = ECANCELED;
    return 0;
  }
  if (r == 0 && (*idle += 1000) >= job->idle_ms) {
    job->err = ETIMEDOUT;
    return 0;
  }
  if (r < 0 && errno != EINTR) {
    job->err = errno;
    return 0;
  }
  return 1;
}

/*
 * After a send/recv that moved nothing (n <= 0): 1 to try again (EINTR, or EAGAIN and the socket is
 * ready now), 0 to stop with job->err set (end of data: eof_err; cancel, timeout, other errors).
 */
static int xfer_retry(xfer_job *job, ssize_t n, int eof_err, short events, int64_t *idle) {
  if (n == 0) {
    job->err = eof_err;
    return 0;
  }
  if (errno == EAGAIN) return xfer_wait(job, events, idle);
  if (errno == EINTR) return 1;
  job->err = errno;
  return 0;
}

static void xfer_send(xfer_job *job) {
  int64_t idle = 0;
  while (job->left > 0) {
    if (atomic_load(&job->cancelled)) {
      job->err = ECANCELED;
      return;
    }
    size_t want = job->left > (int64_t)(1 << 30) ? (size_t)1 << 30 : (size_t)job->left;
    off_t off = (off_t)job->off;
    ssize_t n = sendfile(job->sock_fd, job->file_fd, &off, want);
    if (n > 0) {
      job->off += n;
      job->left -= n;
      job->moved += n;
      idle = 0;
    } else if (!xfer_retry(job, n, EIO /* the file is shorter than promised */, POLLOUT, &idle)) {
      return;
    }
  }
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

static void xfer_recv(xfer_job *job) {
  char *buf = malloc(RECV_BUF);
  if (!buf) {
    job->err = ENOMEM;
    return;
  }
  struct stat st;
  int64_t wb_from = fstat(job->file_fd, &st) == 0 ? (int64_t)st.st_size : -1, wb_pending = 0, idle = 0;
  while (job->left > 0) {
    if (atomic_load(&job->cancelled)) {
      job->err = ECANCELED;
      break;
    }
    size_t want = job->left > RECV_BUF ? RECV_BUF : (size_t)job->left;
    ssize_t n = recv(job->sock_fd, buf, want, 0);
    if (n > 0) {
      if (job->sha) SHA256_Update(job->sha, buf, (size_t)n);
      if ((job->err = write_all(job->file_fd, buf, (size_t)n)) != 0) break;
      job->left -= n;
      job->moved += n;
      idle = 0;
      wb_pending += n;
      if (job->wb_every > 0 && wb_from >= 0 && wb_pending >= job->wb_every) {
        sync_file_range(job->file_fd, (off_t)wb_from, (off_t)wb_pending, SYNC_FILE_RANGE_WRITE);
        wb_from += wb_pending;
        wb_pending = 0;
      }
    } else if (!xfer_retry(job, n, ECONNRESET /* the peer closed before sending everything */, POLLIN, &idle)) {
      break;
    }
  }
  free(buf);
}

static void xfer_recv_buf(xfer_job *job) {
  int64_t idle = 0;
  while (job->left > 0) {
    if (atomic_load(&job->cancelled)) {
      job->err = ECANCELED;
      return;
    }
    ssize_t n = recv(job->sock_fd, job->dest + job->moved, (size_t)job->left, 0);
    if (n > 0) {
      job->left -= n;
      job->moved += n;
      idle = 0;
    } else if (!xfer_retry(job, n, ECONNRESET, POLLIN, &idle)) {
      return;
    }
  }
}

static void *xfer_thread(void *arg) {
  xfer_job *job = arg;
  if (job->kind == XFER_SEND) xfer_send(job);
  else if (job->kind == XFER_RECV) xfer_recv(job);
  else xfer_recv_buf(job);
  /* job may be freed on the JS thread as soon as it is queued: touch only the local copy after */
  napi_threadsafe_function tsfn = job->tsfn;
  napi_call_threadsafe_function(tsfn, job, napi_tsfn_blocking);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static void xfer_call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  xfer_job *job = data;
  close(job->sock_fd);
  if (job->file_fd >= 0) close(job->file_fd);
  job->done = 1;
  if (env != NULL) {
    if (job->sha_ref) napi_delete_reference(env, job->sha_ref);
    if (job->dest_ref) napi_delete_reference(env, job->dest_ref);
    if (cb != NULL) {
      napi_value argv[2], undef;
      if (job->err) argv[0] = errno_error(env, job->err, job->kind == XFER_SEND ? "sendfile" : "recv", NULL);
      else napi_get_null(env, &argv[0]);
      napi_create_double(env, (double)job->moved, &argv[1]);
      napi_get_undefined(env, &undef);
      napi_call_function(env, undef, cb, 2, argv, NULL);
    }
  }
  xfer_unref(job);
}

/* Undo a job that never started: its dup'ed fds, its sha256 reference, its memory. */
static void xfer_discard(napi_env env, xfer_job *job) {
  if (job->sock_fd >= 0) close(job->sock_fd);
  if (job->file_fd >= 0) close(job->file_fd);
  if (job->sha_ref) napi_delete_reference(env, job->sha_ref);
  if (job->dest_ref) napi_delete_reference(env, job->dest_ref);
  free(job);
}

/* Starts the thread for a job whose other fields are set; returns the handle, or NULL with an exception. */
static napi_value xfer_start(napi_env env, xfer_job *job, int64_t sock_fd, int64_t file_fd, napi_value done) {
  napi_value name, handle;
  job->sock_fd = job->file_fd = -1;
  int no_file = job->kind == XFER_RECV_BUF;
  if (sock_fd < 0 || (!no_file && file_fd < 0) || sock_fd > INT_MAX || file_fd > INT_MAX) {
    xfer_discard(env, job);
    return throw_type(env, "fds must be non-negative");
  }
  job->sock_fd = fcntl((int)sock_fd, F_DUPFD_CLOEXEC, 0);
  if (job->sock_fd < 0 || (!no_file && (job->file_fd = fcntl((int)file_fd, F_DUPFD_CLOEXEC, 0)) < 0)) {
    int e = errno;
    xfer_discard(env, job);
    return throw_errno(env, e, "dup", NULL);
  }
  atomic_init(&job->cancelled, 0);
  job->refs = 2;
  napi_create_string_utf8(env, "pierfs.transfer", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, done, NULL, name, 0, 1, NULL, NULL, NULL, xfer_call_js, &job->tsfn) != napi_ok) {
    xfer_discard(env, job);
    return throw_errno(env, EAGAIN, "napi_create_threadsafe_function", NULL);
  }
  pthread_attr_t attr;
  pthread_t th;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int e = pthread_create(&th, &attr, xfer_thread, job);
  pthread_attr_destroy(&attr);
  if (e != 0) {
    napi_release_threadsafe_function(job->tsfn, napi_tsfn_abort);
    xfer_discard(env, job);
    return throw_errno(env, e, "pthread_create", NULL);
  }
  napi_create_external(env, job, xfer_handle_finalize, NULL, &handle);
  return handle;
}

static int is_function(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_function;
}

static napi_value js_sendfile(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int64_t sock_fd, file_fd, off, len, idle_ms;
  if (!get_args(env, info, 6, argv) || !get_i64(env, argv[0], &sock_fd, "socketFd") ||
      !get_i64(env, argv[1], &file_fd, "fileFd") || !get_i64(env, argv[2], &off, "offset") ||
      !get_i64(env, argv[3], &len, "length") || !get_i64(env, argv[4], &idle_ms, "idleTimeoutMs"))
    return NULL;
  if (!is_function(env, argv[5])) return throw_type(env, "done must be a function");
  if (off < 0 || len < 0) return throw_type(env, "offset and length must be non-negative");
  xfer_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "sendfile", NULL);
  job->kind = XFER_SEND;
  job->off = off;
  job->left = len;
  job->idle_ms = idle_ms > 0 ? idle_ms : INT64_MAX;
  return xfer_start(env, job, sock_fd, file_fd, argv[5]);
}

/* The SHA256_CTX inside a Buffer made by sha256New, or NULL (TypeError thrown). */
static SHA256_CTX *get_sha(napi_env env, napi_value v) {
  bool isbuf = false;
  void *data = NULL;
  size_t len = 0;
  napi_is_buffer(env, v, &isbuf);
  if (isbuf) napi_get_buffer_info(env, v, &data, &len);
  if (!isbuf || len != sizeof(SHA256_CTX) || ((uintptr_t)data % _Alignof(SHA256_CTX)) != 0) {
    throw_type(env, "expected a sha256 state from sha256New");
    return NULL;
  }
  return data;
}

static napi_value js_recv_to_file(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  int64_t sock_fd, file_fd, len, wb_every, idle_ms;
  if (!get_args(env, info, 7, argv) || !get_i64(env, argv[0], &sock_fd, "socketFd") ||
      !get_i64(env, argv[1], &file_fd, "fileFd") || !get_i64(env, argv[2], &len, "length") ||
      !get_i64(env, argv[4], &wb_every, "writebackEvery") || !get_i64(env, argv[5], &idle_ms, "idleTimeoutMs"))
    return NULL;
  if (!is_function(env, argv[6])) return throw_type(env, "done must be a function");
  if (len < 0) return throw_type(env, "length must be non-negative");
  napi_valuetype t;
  napi_typeof(env, argv[3], &t);
  SHA256_CTX *sha = NULL;
  if (t != napi_null && t != napi_undefined && !(sha = get_sha(env, argv[3]))) return NULL;
  xfer_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "recv", NULL);
  job->kind = XFER_RECV;
  job->left = len;
  job->wb_every = wb_every;
  job->idle_ms = idle_ms > 0 ? idle_ms : INT64_MAX;
  if (sha) {
    job->sha = sha;
    napi_create_reference(env, argv[3], 1, &job->sha_ref); /* keeps the Buffer alive for the thread */
  }
  return xfer_start(env, job, sock_fd, file_fd, argv[6]);
}

/* recvInto(socketFd, buffer, offset, length, idleTimeoutMs, done(err, bytes)) → handle: read exactly
 * length bytes off the socket into buffer[offset…] (the buffer is not to be touched until done). */
static napi_value js_recv_into(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int64_t sock_fd, off, len, idle_ms;
  if (!get_args(env, info, 6, argv) || !get_i64(env, argv[0], &sock_fd, "socketFd") ||
      !get_i64(env, argv[2], &off, "offset") || !get_i64(env, argv[3], &len, "length") ||
      !get_i64(env, argv[4], &idle_ms, "idleTimeoutMs"))
    return NULL;
  if (!is_function(env, argv[5])) return throw_type(env, "done must be a function");
  bool isbuf = false;
  void *data = NULL;
  size_t cap = 0;
  napi_is_buffer(env, argv[1], &isbuf);
  if (!isbuf) return throw_type(env, "buffer must be a Buffer");
  napi_get_buffer_info(env, argv[1], &data, &cap);
  if (off < 0 || len < 0 || (uint64_t)off + (uint64_t)len > cap) return throw_type(env, "offset and length must lie within the buffer");
  xfer_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "recv", NULL);
  job->kind = XFER_RECV_BUF;
  job->left = len;
  job->idle_ms = idle_ms > 0 ? idle_ms : INT64_MAX;
  job->dest = (char *)data + off;
  napi_create_reference(env, argv[1], 1, &job->dest_ref);
  return xfer_start(env, job, sock_fd, -1, argv[5]);
}

static napi_value js_transfer_cancel(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data = NULL;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL)
    return throw_type(env, "expected a transfer handle");
  xfer_job *job = data;
  if (!job->done) {
    atomic_store(&job->cancelled, 1);
    shutdown(job->sock_fd, SHUT_RDWR); /* wakes the thread's poll; the connection is being dropped anyway */
  }
  return undefined(env);
}

/*
 * sha256New() → Buffer holding an OpenSSL SHA256_CTX (plain bytes: Buffer.from copies a state);
 * sha256Update(state, data); sha256Hex(state) → hex digest of the bytes so far (the state stays
 * usable). OpenSSL is Node's own (its symbols are exported to addons), SHA-NI where the CPU has it.
 */
static napi_value js_sha256_new(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  void *data;
  if (napi_create_buffer(env, sizeof(SHA256_CTX), &data, &out) != napi_ok) return NULL;
  SHA256_Init((SHA256_CTX *)data);
  return out;
}

static napi_value js_sha256_update(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  SHA256_CTX *sha = get_sha(env, argv[0]);
  if (!sha) return NULL;
  void *data = NULL;
  size_t len = 0;
  bool ok = false;
  napi_is_typedarray(env, argv[1], &ok);
  if (ok) {
    napi_typedarray_type tt;
    napi_value ab;
    size_t off;
    napi_get_typedarray_info(env, argv[1], &tt, &len, &data, &ab, &off);
    if (tt != napi_uint8_array) return throw_type(env, "data must be a Uint8Array");
  } else {
    return throw_type(env, "data must be a Uint8Array");
  }
  if (len) SHA256_Update(sha, data, len);
  return undefined(env);
}

static napi_value js_sha256_hex(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  if (!get_args(env, info, 1, argv)) return NULL;
  SHA256_CTX *sha = get_sha(env, argv[0]);
  if (!sha) return NULL;
  SHA256_CTX c = *sha;
  unsigned char md[SHA256_DIGEST_LENGTH];
  char hex[2 * SHA256_DIGEST_LENGTH + 1];
  SHA256_Final(md, &c);
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  napi_create_string_utf8(env, hex, 2 * SHA256_DIGEST_LENGTH, &out);
  return out;
}

/*
 * syncFileRange(fd, offset, nbytes, flags, done(err)): sync_file_range(2) in libuv's pool. With
 * SYNC_FILE_RANGE_WRITE (2) it starts writeback of the range and returns without waiting for it,
 * so a later fsync(2) finds less to do. Not a durability guarantee by itself.
 */
typedef struct {
  int fd;
  int64_t off, len;
  unsigned flags;
  int err;
  napi_async_work work;
  napi_ref cb;
} sfr_job;

static void sfr_execute(napi_env env, void *data) {
  (void)env;
  sfr_job *job = data;
  if (sync_file_range(job->fd, (off_t)job->off, (off_t)job->len, job->flags) != 0) job->err = errno;
}

static void sfr_complete(napi_env env, napi_status status, void *data) {
  sfr_job *job = data;
  napi_value cb, argv[1], undef;
  if (status == napi_cancelled) job->err = ECANCELED;
  if (job->err) argv[0] = errno_error(env, job->err, "sync_file_range", NULL);
  else napi_get_null(env, &argv[0]);
  napi_get_reference_value(env, job->cb, &cb);
  napi_get_undefined(env, &undef);
  napi_call_function(env, undef, cb, 1, argv, NULL);
  napi_delete_reference(env, job->cb);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value js_sync_file_range(napi_env env, napi_callback_info info) {
  napi_value argv[5], name;
  int64_t fd, off, len, flags;
  if (!get_args(env, info, 5, argv) || !get_i64(env, argv[0], &fd, "fd") || !get_i64(env, argv[1], &off, "offset") ||
      !get_i64(env, argv[2], &len, "nbytes") || !get_i64(env, argv[3], &flags, "flags"))
    return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[4], &t);
  if (t != napi_function) return throw_type(env, "done must be a function");
  if (fd < 0 || fd > INT_MAX || off < 0 || len < 0) return throw_type(env, "fd, offset and nbytes must be non-negative");
  sfr_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "sync_file_range", NULL);
  job->fd = (int)fd;
  job->off = off;
  job->len = len;
  job->flags = (unsigned)flags;
  napi_create_reference(env, argv[4], 1, &job->cb);
  napi_create_string_utf8(env, "pierfs.syncFileRange", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, sfr_execute, sfr_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return undefined(env);
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"mknod", js_mknod},           {"mkfifo", js_mkfifo},         {"makedev", js_makedev},
      {"devsplit", js_devsplit},     {"lsetxattr", js_lsetxattr},   {"lgetxattr", js_lgetxattr},
      {"llistxattr", js_llistxattr}, {"lremovexattr", js_lremovexattr}, {"lsetmeta", js_lsetmeta},
      {"fsetmeta", js_fsetmeta},     {"fsetxattr", js_fsetxattr},
      {"mount", js_mount},           {"umount2", js_umount2},       {"sendfile", js_sendfile},
      {"transferCancel", js_transfer_cancel},
      {"recvToFile", js_recv_to_file}, {"recvInto", js_recv_into},   {"syncFileRange", js_sync_file_range},
      {"sha256New", js_sha256_new}, {"sha256Update", js_sha256_update}, {"sha256Hex", js_sha256_hex},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}
