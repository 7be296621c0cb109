/*
 * pierfs: the filesystem syscalls Node's fs module lacks, as a tiny N-API addon.
 * mknod/mkfifo (device nodes and whiteouts), l*xattr on Buffers (binary values such as
 * security.capability), lsetmeta (owner + mode + nanosecond mtime in one call, never following
 * symlinks), mount/umount2 (overlay snapshots), sendfile (a file range to a socket from a thread of
 * its own, for the registry's blob GETs), syncFileRange (early writeback of uploads). Errors are thrown like Node's own: an Error whose
 * message is "ECODE: strerror, syscall 'path'" with .code, .errno, .syscall and .path set.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

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

/* lgetxattr(path, name) → Buffer, or null when the attribute is absent. */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], out;
  char path[PATH_BUF], name[NAME_BUF];
  if (!get_args(env, info, 2, argv) || !get_str(env, argv[0], path, sizeof path, "path") ||
      !get_str(env, argv[1], name, sizeof name, "name"))
    return NULL;
  char small[256];
  ssize_t n = lgetxattr(path, name, small, sizeof small);
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
    ssize_t size = lgetxattr(path, name, NULL, 0);
    if (size < 0) continue;
    char *buf = malloc((size_t)size + 1);
    if (!buf) return throw_errno(env, ENOMEM, "lgetxattr", path);
    n = lgetxattr(path, name, buf, (size_t)size + 1);
    if (n >= 0) {
      void *dst;
      napi_create_buffer_copy(env, (size_t)n, buf, &dst, &out);
      free(buf);
      return out;
    }
    free(buf);
  }
}

/* llistxattr(path) → string[] */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  char path[PATH_BUF];
  if (!get_args(env, info, 1, argv) || !get_str(env, argv[0], path, sizeof path, "path")) return NULL;
  char small[1024];
  char *buf = small;
  ssize_t n = llistxattr(path, small, sizeof small);
  while (n < 0) {
    if (errno != ERANGE) {
      int err = errno;
      if (buf != small) free(buf);
      return throw_errno(env, err, "llistxattr", path);
    }
    ssize_t size = llistxattr(path, NULL, 0);
    if (size < 0) return throw_errno(env, errno, "llistxattr", path);
    if (buf != small) free(buf);
    buf = malloc((size_t)size + 1);
    if (!buf) return throw_errno(env, ENOMEM, "llistxattr", path);
    n = llistxattr(path, buf, (size_t)size + 1);
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
  if (mode >= 0 && fchmodat(AT_FDCWD, path, (mode_t)mode, 0) != 0) return throw_errno(env, errno, "chmod", path);
  struct timespec ts[2] = {{.tv_sec = sec, .tv_nsec = nsec}, {.tv_sec = sec, .tv_nsec = nsec}};
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0) return throw_errno(env, errno, "utimensat", path);
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
 * sendfile(socketFd, fileFd, offset, length, idleTimeoutMs, done(err, sent)) → handle
 * sendfileCancel(handle)
 *
 * Copies length bytes of the file from offset to the socket with sendfile(2), in a thread of its
 * own (not libuv's pool: a slow client must not hold a pool thread that fs calls need), waiting
 * with poll(POLLOUT) whenever the non-blocking socket is full. Both fds are dup'ed here, so the
 * caller may close its own at any time: the thread never writes to an fd number that could have
 * been reused. done runs on the JS thread once the thread has finished, with err null after all
 * length bytes went out, else an errno Error (ECANCELED after sendfileCancel, ETIMEDOUT when the
 * socket accepted nothing for idleTimeoutMs, EIO when the file ended early); sent is the number
 * of bytes written either way. sendfileCancel (JS thread) makes the thread stop at once; it is a
 * no-op once done has run.
 */
typedef struct {
  int out_fd, in_fd;
  int64_t off, left, sent, idle_ms;
  int err;
  atomic_int cancelled;
  int done;  /* JS thread: the fds are closed, done was called */
  int refs;  /* JS thread: one for the transfer, one for the handle */
  napi_threadsafe_function tsfn;
} sf_job;

static void sf_unref(sf_job *job) {
  if (--job->refs == 0) free(job);
}

static void sf_handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sf_unref((sf_job *)data);
}

static void *sf_thread(void *arg) {
  sf_job *job = arg;
  int64_t idle = 0;
  while (job->left > 0) {
    if (atomic_load(&job->cancelled)) {
      job->err = ECANCELED;
      break;
    }
    size_t want = job->left > (int64_t)(1 << 30) ? (size_t)1 << 30 : (size_t)job->left;
    off_t off = (off_t)job->off;
    ssize_t n = sendfile(job->out_fd, job->in_fd, &off, want);
    if (n > 0) {
      job->off += n;
      job->left -= n;
      job->sent += n;
      idle = 0;
      continue;
    }
    if (n == 0) {
      job->err = EIO; /* the file is shorter than promised */
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      job->err = errno;
      break;
    }
    struct pollfd p = {.fd = job->out_fd, .events = POLLOUT};
    int r = poll(&p, 1, 1000);
    if (r == 0 && (idle += 1000) >= job->idle_ms) {
      job->err = ETIMEDOUT;
      break;
    }
    if (r < 0 && errno != EINTR) {
      job->err = errno;
      break;
    }
  }
  /* job may be freed on the JS thread as soon as it is queued: touch only the local copy after */
  napi_threadsafe_function tsfn = job->tsfn;
  napi_call_threadsafe_function(tsfn, job, napi_tsfn_blocking);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static void sf_call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  sf_job *job = data;
  close(job->out_fd);
  close(job->in_fd);
  job->done = 1;
  if (env != NULL && cb != NULL) {
    napi_value argv[2], undef;
    if (job->err) argv[0] = errno_error(env, job->err, "sendfile", NULL);
    else napi_get_null(env, &argv[0]);
    napi_create_double(env, (double)job->sent, &argv[1]);
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, cb, 2, argv, NULL);
  }
  sf_unref(job);
}

static napi_value js_sendfile(napi_env env, napi_callback_info info) {
  napi_value argv[6], name, handle;
  int64_t out_fd, in_fd, off, len, idle_ms;
  if (!get_args(env, info, 6, argv) || !get_i64(env, argv[0], &out_fd, "socketFd") ||
      !get_i64(env, argv[1], &in_fd, "fileFd") || !get_i64(env, argv[2], &off, "offset") ||
      !get_i64(env, argv[3], &len, "length") || !get_i64(env, argv[4], &idle_ms, "idleTimeoutMs"))
    return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[5], &t);
  if (t != napi_function) return throw_type(env, "done must be a function");
  if (off < 0 || len < 0 || out_fd < 0 || in_fd < 0 || out_fd > INT_MAX || in_fd > INT_MAX)
    return throw_type(env, "fds, offset and length must be non-negative");
  sf_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "sendfile", NULL);
  job->out_fd = fcntl((int)out_fd, F_DUPFD_CLOEXEC, 0);
  if (job->out_fd < 0) {
    int e = errno;
    free(job);
    return throw_errno(env, e, "dup", NULL);
  }
  job->in_fd = fcntl((int)in_fd, F_DUPFD_CLOEXEC, 0);
  if (job->in_fd < 0) {
    int e = errno;
    close(job->out_fd);
    free(job);
    return throw_errno(env, e, "dup", NULL);
  }
  job->off = off;
  job->left = len;
  job->idle_ms = idle_ms > 0 ? idle_ms : INT64_MAX;
  atomic_init(&job->cancelled, 0);
  job->refs = 2;
  napi_create_string_utf8(env, "pierfs.sendfile", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[5], NULL, name, 0, 1, NULL, NULL, NULL, sf_call_js, &job->tsfn) != napi_ok) {
    close(job->out_fd);
    close(job->in_fd);
    free(job);
    return throw_errno(env, EAGAIN, "napi_create_threadsafe_function", NULL);
  }
  pthread_attr_t attr;
  pthread_t th;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int e = pthread_create(&th, &attr, sf_thread, job);
  pthread_attr_destroy(&attr);
  if (e != 0) {
    napi_release_threadsafe_function(job->tsfn, napi_tsfn_abort);
    close(job->out_fd);
    close(job->in_fd);
    free(job);
    return throw_errno(env, e, "pthread_create", NULL);
  }
  napi_create_external(env, job, sf_handle_finalize, NULL, &handle);
  return handle;
}

static napi_value js_sendfile_cancel(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data = NULL;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL)
    return throw_type(env, "expected a sendfile handle");
  sf_job *job = data;
  if (!job->done) {
    atomic_store(&job->cancelled, 1);
    shutdown(job->out_fd, SHUT_RDWR); /* wakes the thread's poll; the connection is being dropped anyway */
  }
  return undefined(env);
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
      {"mount", js_mount},           {"umount2", js_umount2},       {"sendfile", js_sendfile},
      {"sendfileCancel", js_sendfile_cancel}, {"syncFileRange", js_sync_file_range},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}
