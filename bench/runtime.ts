/**
 * bench/runtime: pier-runtime against runc on the same bundle, in one run.
 *   - CLI cycle: `create` + `start` + `delete --force` of a container running /bin/true, with each
 *     command's own time too (create goes through Node; start and delete are served by the native
 *     front, native/front.c)
 *   - CLI `run` of /bin/true (foreground, waits for exit, deletes)
 *   - CLI `state` of a running container (front) and `list` (always the TypeScript CLI)
 *   - library cycle: the same create/start/delete through src/runtime/index.ts in-process
 * pier and runc alternate run by run (and which goes first alternates too), so load that comes and
 * goes on the machine hits both alike. Prints, per operation, the medians, the min–max of each side
 * and the range of the per-pair ratio, as a markdown table (paste into docs/benchmarks.md).
 * Usage: node bench/runtime.ts [N]    (root; runc from Debian; pier built by scripts/setup)
 * PIER_RUNTIME_FRONT=0 in the environment measures the TypeScript CLI alone (the front hands over).
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
const sleeper = mkdtempSync(join(tmpdir(), 'pier-bench-sleep-'));
const sleepSpec = baseSpec(['sleep', '600']);
sleepSpec.root = { path: busyboxRootfs(), readonly: true };
writeFileSync(join(sleeper, 'config.json'), JSON.stringify(sleepSpec));
const root = mkdtempSync(join(tmpdir(), 'pier-bench-root-'));

// stderr goes to a file: a created container's init inherits it, and a pipe would keep spawnSync
// waiting until the container exits.
const errFile = join(root, 'stderr');
const errFd = openSync(errFile, 'w+');
const rootOf = (bin: string) => join(root, bin === RUNC ? 'runc' : 'pier');
/** Run one CLI command; returns its wall time in ms. */
function sh(bin: string, args: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(bin, ['--root', rootOf(bin), ...args], { stdio: ['ignore', 'ignore', errFd], timeout: 30_000 });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status ?? r.signal}): ${readFileSync(errFile, 'utf8').trim().split('\n').pop()}`);
  return ms;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs: number[], digits = 1): string => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

/** One sample of an operation: total ms plus named parts. */
type Sample = { total: number; parts?: Record<string, number> };
type Op = (bin: string, i: number) => Sample | Promise<Sample>;

const cycle: Op = (bin, i) => {
  const id = `bench-${i + 2}`;
  const create = sh(bin, ['create', '--bundle', bundle, id]);
  const start = sh(bin, ['start', id]);
  const del = sh(bin, ['delete', '--force', id]);
  return { total: create + start + del, parts: { create, start, 'delete --force': del } };
};
const runOnce: Op = (bin, i) => ({ total: sh(bin, ['run', '--bundle', bundle, `benchrun-${i + 2}`]) });
const stateOf: Op = (bin) => ({ total: sh(bin, ['state', 'bench-sleeper']) });
const listAll: Op = (bin) => ({ total: sh(bin, ['list']) });

/** N interleaved pairs (after one warm-up each): pier then runc on even runs, runc then pier on odd. */
async function pairs(pier: Op, runc: Op): Promise<{ p: Sample[]; r: Sample[] }> {
  await pier(PIER, -1);
  await runc(RUNC, -1);
  const p: Sample[] = [], r: Sample[] = [];
  for (let i = 0; i < N; i++) {
    if (i % 2 === 0) {
      p.push(await pier(PIER, i));
      r.push(await runc(RUNC, i));
    } else {
      r.push(await runc(RUNC, i));
      p.push(await pier(PIER, i));
    }
  }
  return { p, r };
}

type Row = { name: string; p: number[]; r: number[] };
const rows: Row[] = [];
function addRows(name: string, { p, r }: { p: Sample[]; r: Sample[] }): void {
  rows.push({ name, p: p.map((s) => s.total), r: r.map((s) => s.total) });
  for (const part of Object.keys(p[0].parts ?? {})) {
    rows.push({ name: `  ${part}`, p: p.map((s) => s.parts![part]), r: r.map((s) => s.parts![part]) });
  }
}

const runcVersion = execFileSync(RUNC, ['--version'], { encoding: 'utf8' }).split('\n')[0];
addRows('create+start+delete (CLI)', await pairs(cycle, cycle));
addRows('run /bin/true (CLI)', await pairs(runOnce, runOnce));
for (const bin of [PIER, RUNC]) {
  sh(bin, ['create', '--bundle', sleeper, 'bench-sleeper']);
  sh(bin, ['start', 'bench-sleeper']);
}
addRows('state of a running container (CLI)', await pairs(stateOf, stateOf));
addRows('list (CLI; pier: the TypeScript CLI)', await pairs(listAll, listAll));
for (const bin of [PIER, RUNC]) sh(bin, ['delete', '--force', 'bench-sleeper']);

const rt = new Runtime({ root: join(root, 'lib'), log: new Logger() });
const libCycle: Op = async (_bin, i) => {
  const id = `lib-${i + 2}`;
  const t = process.hrtime.bigint();
  await rt.create({ id, bundle, stdio: ['ignore', 'ignore', 'ignore'] });
  await rt.start(id);
  await rt.delete(id, true);
  return { total: Number(process.hrtime.bigint() - t) / 1e6 };
};
const lib = await pairs(libCycle, cycle);
rows.push({ name: 'create+start+delete (pier library, in-process) vs runc CLI', p: lib.p.map((s) => s.total), r: lib.r.map((s) => s.total) });
rmSync(bundle, { recursive: true, force: true });
rmSync(sleeper, { recursive: true, force: true });
rmSync(root, { recursive: true, force: true });

const front = process.env.PIER_RUNTIME_FRONT === '0' ? 'TypeScript CLI only (PIER_RUNTIME_FRONT=0)' : 'native front';
console.log(`\nbench/runtime — ${N} interleaved pairs, ${runcVersion}, node ${process.versions.node}, pier: ${front}\n`);
console.log('| operation | pier median (ms) | pier range | runc median (ms) | runc range | pier/runc | per-pair ratio range |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const { name, p, r } of rows) {
  const ratios = p.map((x, i) => x / r[i]);
  console.log(`| ${name} | ${median(p).toFixed(1)} | ${range(p)} | ${median(r).toFixed(1)} | ${range(r)} | ${(median(p) / median(r)).toFixed(2)}× | ${range(ratios, 2)}× |`);
}
