/** Where pier-init (native/init.c, the --init PID 1) is: $PIER_INIT, else native/build/pier-init above this module. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null | undefined;

export function findInitBinary(): string | undefined {
  if (cached !== undefined) return cached ?? undefined;
  if (process.env.PIER_INIT) return (cached = existsSync(process.env.PIER_INIT) ? process.env.PIER_INIT : null) ?? undefined;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const p = join(dir, 'native', 'build', 'pier-init');
    if (existsSync(p)) return (cached = p);
    if (dirname(dir) === dir) break;
  }
  cached = null;
  return undefined;
}
