/**
 * bench/engine: `pier run` against Debian's podman 4.3 (runc, cgroupfs, overlay storage, its default
 * bridge network), side by side in one run, on the same busybox image:
 *   - `run --rm busybox true`, sequentially, median of N
 *   - 100 containers started concurrently with `run -d busybox sleep 600` (wall time until all
 *     100 commands returned), then removed (not timed); ROUNDS rounds, alternating who goes first
 * Both daemons/stores are private to the run (temp dirs) and warmed up once.
 * Usage: node bench/engine.ts [N] [CONCURRENT] [ROUNDS]   (root; after scripts/test's setup installed podman)
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeBridge } from '../test/helpers/engine.ts';

const N = Number(process.argv[2] ?? 20);
const C = Number(process.argv[3] ?? 100);
const R = Number(process.argv[4] ?? 3);
const top = join(import.meta.dirname, '..');
const PIER = join(top, 'bin', 'pier');

// Lower case only: podman takes the oci: path as part of an image name.
const dir = `/var/tmp/pier-bench-engine-${process.pid}`;
mkdirSync(dir);
const pierEnv = { ...process.env, PIER_ROOT: join(dir, 'pier-root'), PIER_RUN: join(dir, 'pier-run'), PIER_BRIDGE: 'pierb0', PIER_BRIDGE_SUBNET: '10.83.0.0/16' };
const conf = join(dir, 'containers.conf');
writeFileSync(conf, '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n');
const podmanEnv = { ...process.env, CONTAINERS_CONF: conf };
const podmanBase = ['--root', join(dir, 'podman-root'), '--runroot', join(dir, 'podman-runroot'), '--storage-driver', 'overlay',
  '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc'];

function must(bin: string, args: string[], env: NodeJS.ProcessEnv): string {
  const r = spawnSync(bin, args, { env, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}
const pier = (args: string[]) => must(PIER, args, pierEnv);
const podman = (args: string[]) => must('podman', [...podmanBase, ...args], podmanEnv);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

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
  pier(['image', 'bootstrap', 'busybox']);
  pier(['image', 'export', '--output', join(dir, 'busybox-oci'), '--format', 'oci-dir', 'busybox']);
  podman(['pull', '-q', `oci:${join(dir, "busybox-oci")}:latest`]);
  podman(['tag', podman(['images', '-q']).trim().split('\n')[0], 'localhost/busybox:latest']);

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
  spawnSync(PIER, ['rm', '-f', ...spawnSync(PIER, ['ps', '-aq'], { env: pierEnv, encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean)], { env: pierEnv });
  const pid = spawnSync('cat', [join(dir, 'pier-run', 'pierd.pid')], { encoding: 'utf8' }).stdout.trim();
  if (pid) try { process.kill(Number(pid), 'SIGTERM'); } catch { /* gone */ }
  spawnSync('podman', [...podmanBase, 'rm', '-f', '-t', '0', '--all'], { env: podmanEnv });
  spawnSync('podman', [...podmanBase, 'system', 'reset', '--force'], { env: podmanEnv });
  removeBridge('pierb0');
  for (const m of spawnSync('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/self/mountinfo | sort -r`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) spawnSync('umount', ['-l', m.trim()]);
  rmSync(dir, { recursive: true, force: true });
}
