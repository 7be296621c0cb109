import { PierError } from '../../../common/errors.ts';
import { Dir, fail } from '../dir.ts';
import { reason } from '../fs.ts';

/** "memory.high" → "memory"; the key must be a plain file name in the cgroup directory. */
export function unifiedController(key: string, value: string): string {
  if (!/^[a-z][a-z0-9_]*\.[A-Za-z0-9_.]+$/.test(key)) fail(`unified ${key}`, JSON.stringify(value), 'not a cgroup v2 control file name');
  return key.slice(0, key.indexOf('.'));
}

/** Write the `unified` map verbatim; the manager has checked and enabled the controllers. */
export function applyUnified(dir: Dir, map: Record<string, string>): void {
  for (const [key, value] of Object.entries(map)) {
    try {
      dir.fs.write(dir.file(key), value);
    } catch (err) {
      throw new PierError(`cannot set unified ${key} ${JSON.stringify(value)}: write ${dir.file(key)}: ${reason(err)}`, { cause: err });
    }
  }
}
