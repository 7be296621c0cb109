/**
 * Pipes for a child's stdio (a container's, under the shim; an exec'd process's, under the CLI).
 * FIFOs, not socketpairs: programs (and images that symlink their logs to /dev/stdout) reopen
 * /proc/self/fd/1, which works on a pipe and fails with ENXIO on a socket. Node cannot call
 * pipe(2), so a named FIFO is made, opened at both ends and unlinked at once. The child's end is
 * opened blocking (its programs expect that); ours is handed to libuv, which makes it non-blocking
 * on its own open file description.
 */
import { closeSync, constants, mkdtempSync, openSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsx } from './fsx.ts';
import { childProcess } from './lazy.ts';

export interface FifoEnds {
  /** the end we keep (read end of an output, write end of stdin) */
  ours: number;
  /** the end the child gets; close ours of it once the child's process has it */
  theirs: number;
}

function mkfifo(path: string): void {
  try {
    fsx().mkfifo(path, 0o600);
  } catch {
    // without the pierfs addon, coreutils does the same
    childProcess().execFileSync('mkfifo', ['-m', '600', path], { stdio: 'ignore' });
  }
}

/** A private directory for the FIFO nodes (they are unlinked as soon as both ends are open). */
export function fifoDir(): string {
  return mkdtempSync(join(tmpdir(), 'pier-shim-'));
}

/** An output pipe: the child writes, we read. */
export function outputFifo(dir: string, name: string): FifoEnds {
  const p = join(dir, name);
  mkfifo(p);
  try {
    // read end first, non-blocking, so the blocking open of the write end finds a reader
    const ours = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
    const theirs = openSync(p, constants.O_WRONLY);
    return { ours, theirs };
  } finally {
    unlinkSync(p);
  }
}

/** A stdin pipe: we write, the child reads (blocking). */
export function inputFifo(dir: string, name: string): FifoEnds {
  const p = join(dir, name);
  mkfifo(p);
  try {
    // O_RDWR on a FIFO never blocks on Linux; holding it lets both real ends open without waiting.
    const hold = openSync(p, constants.O_RDWR);
    try {
      const theirs = openSync(p, constants.O_RDONLY);
      const ours = openSync(p, constants.O_WRONLY | constants.O_NONBLOCK);
      return { ours, theirs };
    } finally {
      closeSync(hold);
    }
  } finally {
    unlinkSync(p);
  }
}

export function removeDir(dir: string): void {
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
}

export function closeQuietly(fd: number | undefined): void {
  if (fd === undefined || fd < 0) return;
  try { closeSync(fd); } catch { /* already closed */ }
}
