/**
 * bench/images: both image benchmarks of issue 3 in one run — unpack of the debootstrap base by pier
 * vs `umoci unpack` (bench/images-unpack.ts), then a build and a cached rebuild by pier vs
 * `buildah bud --isolation chroot` (bench/images-build.ts). Each prints its own markdown table.
 * Usage: node bench/images.ts [N=5]   (root; umoci, buildah, debootstrap from Debian)
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const n = process.argv[2] ?? '5';
for (const script of ['images-unpack.ts', 'images-build.ts']) {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, script), n], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
