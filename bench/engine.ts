/**
 * bench/engine: `pier run` against Debian's podman 4.3 (runc, cgroupfs, overlay storage, its default
 * bridge network), side by side in one run, on the same busybox image:
 *   - `run --rm busybox true`, sequentially, median of N
 *   - 100 containers started concurrently with `run -d busybox sleep 600` (wall time until all
 *     100 commands returned), then removed (not timed); ROUNDS rounds, alternating who goes first
 * Both daemons/stores are private to the run (temp dirs) and warmed up once.
 * Usage: node bench/engine.ts [N] [CONCURRENT] [ROUNDS]   (root; after scripts/test's setup installed podman)
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { busyboxInBoth, median, peers } from './engine-common.ts';

const N = Number(process.argv[2] ?? 20);
const C = Number(process.argv[3] ?? 100);
const R = Number(process.argv[4] ?? 3);
const PIER = join(import.meta.dirname, '..', 'bin', 'pier');
const peer = peers('engine', 'pierb0', '10.83.0.0/16', PIER);
const { pier, podman, pierEnv, podmanEnv, podmanBase } = peer;

function timeSeq(fn: () => void): number {
  fn();
  const xs: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    fn();
    xs.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return median(xs);
}

function spawnAsync(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(bin, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => { err += d; });
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} ${args.slice(-4).join(' ')}: ${err.trim()}`))));
  });
}

async function timeConcurrent(bin: string, base: string[], env: NodeJS.ProcessEnv, image: string): Promise<number> {
  const t = process.hrtime.bigint();
  await Promise.all(Array.from({ length: C }, () => spawnAsync(bin, [...base, 'run', '-d', image, 'sleep', '600'], env)));
  return Number(process.hrtime.bigint() - t) / 1e6;
}

try {
  busyboxInBoth(peer);

  const pierRun = timeSeq(() => pier(['run', '--rm', 'busybox', 'true']));
  const podmanRun = timeSeq(() => podman(['run', '--rm', 'localhost/busybox', 'true']));
  // The concurrent start R times, alternating who goes first; the median of each.
  const pierTimes: number[] = [], podmanTimes: number[] = [];
  const pierRound = async () => {
    pierTimes.push(await timeConcurrent(PIER, [], pierEnv, 'busybox'));
    pier(['rm', '-f', ...pier(['ps', '-aq']).trim().split('\n')]);
  };
  const podmanRound = async () => {
    podmanTimes.push(await timeConcurrent('podman', podmanBase, podmanEnv, 'localhost/busybox'));
    podman(['rm', '-f', '-t', '0', '--all']);
  };
  for (let i = 0; i < R; i++) {
    if (i % 2 === 0) { await pierRound(); await podmanRound(); } else { await podmanRound(); await pierRound(); }
  }
  const pierMany = median(pierTimes);
  const podmanMany = median(podmanTimes);

  const r = (a: number, b: number) => (a / b).toFixed(2);
  process.stdout.write([
    `| operation | pier | podman 4.3 + runc | pier / podman |`,
    `|---|---:|---:|---:|`,
    `| \`run --rm busybox true\` (median of ${N}) | ${pierRun.toFixed(1)} ms | ${podmanRun.toFixed(1)} ms | ${r(pierRun, podmanRun)} |`,
    `| ${C} × \`run -d busybox sleep\` at once (wall, median of ${R}) | ${pierMany.toFixed(0)} ms | ${podmanMany.toFixed(0)} ms | ${r(pierMany, podmanMany)} |`,
    `| (each round: pier ${pierTimes.map((x) => x.toFixed(0)).join(', ')} ms; podman ${podmanTimes.map((x) => x.toFixed(0)).join(', ')} ms) | | | |`,
    '',
  ].join('\n'));
} finally {
  peer.close();
}
