import { PierError } from '../../../common/errors.ts';
import { sleepMs } from '../fs.ts';
import { Dir } from '../dir.ts';

const FREEZE_TIMEOUT_MS = 2000;

/** cgroup.freeze requests the state; cgroup.events "frozen 1" reports that it is reached. */
export function freezeV2(dir: Dir): void {
  dir.set('cgroup.freeze', '1', 'cgroup.freeze');
  const deadline = Date.now() + FREEZE_TIMEOUT_MS;
  let delay = 1;
  while (dir.keyed('cgroup.events')?.get('frozen') !== 1) {
    if (Date.now() > deadline) {
      dir.trySet('cgroup.freeze', '0');
      throw new PierError(`cannot freeze cgroup ${dir.path}: cgroup.events did not report frozen within ${FREEZE_TIMEOUT_MS} ms`);
    }
    sleepMs(delay);
    delay = Math.min(delay * 2, 20);
  }
}

export function thawV2(dir: Dir): void {
  dir.set('cgroup.freeze', '0', 'cgroup.freeze');
}

export function frozenV2(dir: Dir): boolean {
  return dir.readOpt('cgroup.freeze') === '1';
}
