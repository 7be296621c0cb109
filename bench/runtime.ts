/**
 * bench/runtime: pier-runtime against runc on the same bundle, in one run.
 *   - CLI cycle: `create` + `start` + `delete --force` of a container running /bin/true
 *   - CLI `run` of /bin/true (foreground, waits for exit, deletes)
 *   - library cycle: the same create/start/delete through src/runtime/index.ts in-process
 * Prints medians of N runs and the ratios as a markdown table (paste into docs/benchmarks.md).
 * Usage: node bench/runtime.ts [N]    (root; runc from Debian; pier built by scripts/setup)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseSpec, busyboxRootfs } from '../test/helpers/rootfs.ts';
import { Runtime } from '../src/runtime/index.ts';
import { Logger } from '../src/common/log.ts';

const N = Number(process.argv[2] ?? 30);
const top = join(import.meta.dirname, '..');
const PIER = join(top, 'bin/pier-runtime');
const RUNC = 'runc';

const bundle = mkdtempSync(join(tmpdir(), 'pier-bench-'));
const spec = baseSpec(['/bin/true']);
spec.root = { path: busyboxRootfs(), readonly: true };
writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
const root = mkdtempSync(join(tmpdir(), 'pier-bench-root-'));

// stderr goes to a file: a created container's init inherits it, and a pipe would keep spawnSync
// waiting until the container exits.
const errFile = join(root, 'stderr');
const errFd = openSync(errFile, 'w+');
function sh(bin: string, args: string[]): void {
  const r = spawnSync(bin, ['--root', join(root, bin === RUNC ? 'runc' : 'pier'), ...args], { stdio: ['ignore', 'ignore', errFd], timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status ?? r.signal}): ${readFileSync(errFile, 'utf8').trim().split('\n').pop()}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(fn: (i: number) => void | Promise<void>): Promise<number> {
  await fn(-1); // warm-up (page cache, cgroup dirs)
  const xs: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    xs.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return median(xs);
}

const cycle = (bin: string) => (i: number) => {
  const id = `bench-${i + 1}`;
  sh(bin, ['create', '--bundle', bundle, id]);
  sh(bin, ['start', id]);
  sh(bin, ['delete', '--force', id]);
};
const runOnce = (bin: string) => (i: number) => sh(bin, ['run', '--bundle', bundle, `benchrun-${i + 1}`]);

const rt = new Runtime({ root: join(root, 'lib'), log: new Logger() });
const libCycle = async (i: number) => {
  const id = `lib-${i + 1}`;
  await rt.create({ id, bundle, stdio: ['ignore', 'ignore', 'ignore'] });
  await rt.start(id);
  await rt.delete(id, true);
};

const runcVersion = execFileSync(RUNC, ['--version'], { encoding: 'utf8' }).split('\n')[0];
const rows: [string, number, number][] = [];
const runcCycle = await time(cycle(RUNC));
rows.push(['create+start+delete (CLI)', await time(cycle(PIER)), runcCycle]);
rows.push(['run /bin/true (CLI)', await time(runOnce(PIER)), await time(runOnce(RUNC))]);
rows.push(['create+start+delete (pier library, in-process) vs runc CLI', await time(libCycle), runcCycle]);
rmSync(bundle, { recursive: true, force: true });
rmSync(root, { recursive: true, force: true });

console.log(`\nbench/runtime — median of ${N}, ${runcVersion}, node ${process.versions.node}\n`);
console.log('| operation | pier (ms) | runc (ms) | pier/runc |');
console.log('|---|---:|---:|---:|');
for (const [name, p, r] of rows) console.log(`| ${name} | ${p.toFixed(1)} | ${r.toFixed(1)} | ${(p / r).toFixed(2)}× |`);
