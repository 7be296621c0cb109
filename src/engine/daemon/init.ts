/** Where pier-init (native/init.c, the --init PID 1) is: the configured path, else native/build/pier-init above this module. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null | undefined;

export function findInitBinary(explicit?: string): string | undefined {
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  if (cached !== undefined) return cached ?? undefined;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const p = join(dir, 'native', 'build', 'pier-init');
    if (existsSync(p)) return (cached = p);
    if (dirname(dir) === dir) break;
  }
  cached = null;
  return undefined;
}
