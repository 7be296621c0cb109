/* CVE-2019-5736: a container process could open /proc/<helper>/exe and overwrite the helper binary
 * on the host. We re-exec from a sealed in-memory copy, so /proc/<pid>/exe is an immutable memfd. */
#include "pier.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define ALL_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

void ensure_sealed(char **argv) {
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0) die("open /proc/self/exe");
  int seals = fcntl(self, F_GET_SEALS);
  if (seals >= 0 && (seals & ALL_SEALS) == ALL_SEALS) { close(self); return; } /* already the copy */

  int mfd = memfd_create("pier-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) mfd = memfd_create("pier-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING); /* pre-6.3 */
  if (mfd < 0) die("memfd_create");
  struct stat st;
  if (fstat(self, &st) < 0) die("stat /proc/self/exe");
  for (off_t left = st.st_size; left > 0;) {
    ssize_t n = sendfile(mfd, self, NULL, (size_t)left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("copy /proc/self/exe to memfd");
    left -= n;
  }
  close(self);
  /* F_SEAL_EXEC also freezes the mode bits; older kernels reject it, so it is best effort. */
  if (fcntl(mfd, F_ADD_SEALS, ALL_SEALS | F_SEAL_EXEC) < 0 && fcntl(mfd, F_ADD_SEALS, ALL_SEALS) < 0) die("seal memfd");
  fexecve(mfd, argv, environ);
  die("exec sealed copy of pier-helper");
}
