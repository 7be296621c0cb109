import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeSync, constants } from 'node:fs';
import { errnoOf } from '../../common/errors.ts';

/**
 * The few filesystem operations the cgroup code performs. The real one talks to cgroupfs;
 * unit tests pass a fake "kernel" over a temp dir (populating control files on mkdir,
 * recording writes, failing on chosen values).
 */
export interface CgroupFs {
  read(file: string): string;
  /** One write(2) of `data`; never creates the file (cgroupfs control files exist or the controller is absent). */
  write(file: string, data: string): void;
  exists(path: string): boolean;
  /** Single level; throws EEXIST if present. */
  mkdir(dir: string): void;
  rmdir(dir: string): void;
  /** Names of the child directories (child cgroups). */
  subdirs(dir: string): string[];
}

export const realFs: CgroupFs = {
  read: (file) => readFileSync(file, 'utf8'),
  write(file, data) {
    // O_WRONLY without O_CREAT: some control files are write-only (devices.allow, cgroup.kill),
    // and a missing file must fail rather than be created.
    const fd = openSync(file, constants.O_WRONLY);
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
  },
  exists: (p) => existsSync(p),
  mkdir: (dir) => mkdirSync(dir),
  rmdir: (dir) => rmdirSync(dir),
  subdirs: (dir) =>
    readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name),
};

const ERRNO_TEXT: Record<string, string> = {
  EINVAL: 'invalid argument',
  EBUSY: 'device or resource busy',
  ENOENT: 'no such file or directory',
  EPERM: 'operation not permitted',
  EACCES: 'permission denied',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EOPNOTSUPP: 'operation not supported',
  ENOTSUP: 'operation not supported',
  ENOTEMPTY: 'directory not empty',
  ERANGE: 'numerical result out of range',
  EEXIST: 'file exists',
};

/** "invalid argument" style text for a system error, falling back to its message. */
export function reason(err: unknown): string {
  const code = errnoOf(err);
  if (code && ERRNO_TEXT[code]) return ERRNO_TEXT[code];
  if (code) return code;
  return err instanceof Error ? err.message.split('\n')[0] : String(err);
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocking sleep: the CLI is synchronous and short-lived. */
export function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}
