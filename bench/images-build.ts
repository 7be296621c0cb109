/**
 * bench/images-build: `pier build` against `buildah bud --isolation chroot --layers` on the same
 * Containerfile (FROM busybox, two RUNs, two COPYs, CMD) and context (200 small files + 4 MB).
 *   - base: pier's bootstrapped busybox; buildah gets the very same image through
 *     `pier image export … oci-archive` + `buildah pull oci-archive:` into a private root
 *     (--root/--runroot, --storage-driver vfs), tagged localhost/busybox:latest
 *   - clean: a fresh pier root / buildah root per run (base imported outside the timing)
 *   - cached: the same build again in that root (every step a cache hit)
 *   - pier runs as the CLI (bin/pier, the bundled dist/), so both pay their process start-up
 * Prints medians of N runs and pier/buildah ratios as a markdown table.
 * Usage: node bench/images-build.ts [N=5]   (root; buildah from Debian; node scripts/build.mjs first)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const N = Number(process.argv[2] ?? 5);
const TOP = join(import.meta.dirname, '..');
const PIER = join(TOP, 'bin', 'pier');
const work = mkdtempSync(join(tmpdir(), 'pier-bench-build-'));

const CONTAINERFILE = `FROM busybox
RUN mkdir -p /srv && echo built > /srv/stamp
COPY files/ /srv/files/
RUN find /srv/files -type f | wc -l > /srv/count
COPY blob.bin /srv/blob.bin
CMD ["cat", "/srv/count"]
`;

function makeContext(): string {
  const ctx = join(work, 'ctx');
  mkdirSync(join(ctx, 'files'), { recursive: true });
  writeFileSync(join(ctx, 'Containerfile'), CONTAINERFILE);
  for (let i = 0; i < 200; i++) writeFileSync(join(ctx, 'files', `f${i}.txt`), `file ${i}\n`.repeat(20));
  writeFileSync(join(ctx, 'blob.bin'), randomBytes(4 << 20));
  return ctx;
}

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = process.hrtime.bigint();
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function main(): void {
  const ctx = makeContext();
  const archive = join(work, 'busybox.tar');
  const seedRoot = join(work, 'seed');
  execFileSync(PIER, ['image', '--root', seedRoot, 'bootstrap', 'busybox'], { stdio: 'ignore' });
  execFileSync(PIER, ['image', '--root', seedRoot, 'export', '--format', 'oci-archive', '--output', archive, 'busybox'], { stdio: 'ignore' });

  const results: Record<string, number[]> = { pierClean: [], pierCached: [], buildahClean: [], buildahCached: [] };
  for (let i = 0; i < N; i++) {
    // pier: fresh root with busybox bootstrapped (untimed), then a clean build and a cached one.
    const root = join(work, `pier-${i}`);
    execFileSync(PIER, ['image', '--root', root, 'bootstrap', 'busybox'], { stdio: 'ignore' });
    const pierArgs = ['build', '--root', root, '-q', '-t', 'bench:1', ctx];
    results.pierClean.push(timed(PIER, pierArgs));
    results.pierCached.push(timed(PIER, pierArgs));

    const common = ['--root', join(work, `bh-${i}`), '--runroot', join(work, `bh-run-${i}`), '--storage-driver', 'vfs'];
    execFileSync('buildah', [...common, 'pull', '-q', `oci-archive:${archive}`], { stdio: 'ignore' });
    const id = execFileSync('buildah', [...common, 'images', '-q'], { encoding: 'utf8' }).trim().split('\n')[0];
    execFileSync('buildah', [...common, 'tag', id, 'localhost/busybox:latest'], { stdio: 'ignore' });
    const bhArgs = [...common, 'bud', '--isolation', 'chroot', '--layers', '--pull=never', '-q', '-t', 'bench:1', '-f', join(ctx, 'Containerfile'), ctx];
    results.buildahClean.push(timed('buildah', bhArgs));
    results.buildahCached.push(timed('buildah', bhArgs));
    process.stderr.write(`run ${i + 1}/${N}: pier ${results.pierClean[i].toFixed(0)}/${results.pierCached[i].toFixed(0)} ms, buildah ${results.buildahClean[i].toFixed(0)}/${results.buildahCached[i].toFixed(0)} ms\n`);
  }
  const row = (what: string, p: number[], b: number[]) => `| ${what} | ${median(p).toFixed(0)} ms | ${median(b).toFixed(0)} ms | ${(median(p) / median(b)).toFixed(2)}× |`;
  console.log(`pier build vs buildah bud --isolation chroot --layers (vfs), medians of ${N}; Containerfile: FROM busybox, 2 RUN, 2 COPY (200 files + 4 MB), CMD\n`);
  console.log('| build | pier | buildah | pier/buildah |');
  console.log('|---|---|---|---|');
  console.log(row('clean (no cache)', results.pierClean, results.buildahClean));
  console.log(row('cached rebuild (all hits)', results.pierCached, results.buildahCached));
}

try {
  main();
} finally {
  rmSync(work, { recursive: true, force: true });
}
