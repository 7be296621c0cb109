import { PierError } from '../../../common/errors.ts';
import { sleepMs } from '../fs.ts';
import { Dir } from '../dir.ts';

const FREEZE_TIMEOUT_MS = 2000;

/**
 * Write FROZEN and wait until the kernel reports FROZEN. A task in uninterruptible sleep can hold
 * the group in FREEZING; re-issuing the write retries the freeze. On timeout thaw and fail, so the
 * container is not left half-frozen.
 */
export function freezeV1(dir: Dir): void {
  dir.set('freezer.state', 'FROZEN', 'freezer state');
  const deadline = Date.now() + FREEZE_TIMEOUT_MS;
  let lastWrite = Date.now();
  let delay = 1;
  for (;;) {
    const state = dir.read('freezer.state');
    if (state === 'FROZEN') return;
    if (Date.now() > deadline) {
      dir.trySet('freezer.state', 'THAWED');
      throw new PierError(`cannot freeze cgroup ${dir.path}: freezer.state is still ${state} after ${FREEZE_TIMEOUT_MS} ms`);
    }
    sleepMs(delay);
    delay = Math.min(delay * 2, 20);
    if (Date.now() - lastWrite > 100) {
      dir.set('freezer.state', 'FROZEN', 'freezer state');
      lastWrite = Date.now();
    }
  }
}

export function thawV1(dir: Dir): void {
  dir.set('freezer.state', 'THAWED', 'freezer state');
}

export function frozenV1(dir: Dir): boolean {
  return dir.readOpt('freezer.state') === 'FROZEN';
}
