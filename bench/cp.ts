/**
 * bench/cp: `pier cp` against Debian's podman 4.3 `podman cp`, side by side in one run, into and out
 * of a running busybox container each (pier: through pierd, walking the container's tree from fds;
 * podman: its copier in the container's mount namespace):
 *   - a directory of 2000 files of 4 KiB (many small files: per-file cost)
 *   - one 256 MiB file (throughput)
 * Median of N rounds per case, each round alternating who goes first; the copied tree is removed
 * between rounds (not timed).
 * Usage: node bench/cp.ts [N]   (root; after scripts/test's setup installed podman)
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { busyboxInBoth, median, peers } from './engine-common.ts';

const N = Number(process.argv[2] ?? 7);
const PIER = process.env.PIER_BIN ?? join(import.meta.dirname, '..', 'bin', 'pier');
const peer = peers('cp', 'pierb1', '10.82.0.0/16', PIER);
const { pier, podman, dir } = peer;

function timed(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

interface Case { name: string; pier: () => void; podman: () => void; reset: () => void }

try {
  busyboxInBoth(peer);
  pier(['run', '-d', '--name', 'cp', 'busybox', 'sleep', '6000']);
  podman(['run', '-d', '--name', 'cp', 'localhost/busybox', 'sleep', '6000']);

  const small = join(dir, 'small');
  mkdirSync(small);
  for (let i = 0; i < 2000; i++) writeFileSync(join(small, `f${i}`), randomBytes(4096));
  const big = join(dir, 'big.bin');
  writeFileSync(big, randomBytes(256 << 20));
  const out = join(dir, 'out');

  const cases: Case[] = [
    {
      name: '2000 × 4 KiB files into the container',
      pier: () => pier(['cp', small, 'cp:/tmp/']), podman: () => podman(['cp', small, 'cp:/tmp/']),
      reset: () => { pier(['exec', 'cp', 'rm', '-rf', '/tmp/small']); podman(['exec', 'cp', 'rm', '-rf', '/tmp/small']); },
    },
    {
      name: '2000 × 4 KiB files out of the container',
      pier: () => pier(['cp', 'cp:/etc/small', join(out, 'pier')]), podman: () => podman(['cp', 'cp:/etc/small', join(out, 'podman')]),
      reset: () => { rmSync(out, { recursive: true, force: true }); mkdirSync(out); },
    },
    {
      name: '256 MiB file into the container',
      pier: () => pier(['cp', big, 'cp:/tmp/']), podman: () => podman(['cp', big, 'cp:/tmp/']),
      reset: () => { pier(['exec', 'cp', 'rm', '-f', '/tmp/big.bin']); podman(['exec', 'cp', 'rm', '-f', '/tmp/big.bin']); },
    },
    {
      name: '256 MiB file out of the container',
      pier: () => pier(['cp', 'cp:/etc/big.bin', join(out, 'pier.bin')]), podman: () => podman(['cp', 'cp:/etc/big.bin', join(out, 'podman.bin')]),
      reset: () => { rmSync(out, { recursive: true, force: true }); mkdirSync(out); },
    },
  ];
  // What the "out" cases copy is put in place once.
  pier(['cp', small, 'cp:/etc/']); podman(['cp', small, 'cp:/etc/']);
  pier(['cp', big, 'cp:/etc/']); podman(['cp', big, 'cp:/etc/']);
  mkdirSync(out);

  const rows: string[] = [];
  for (const c of cases) {
    const p: number[] = [], q: number[] = [];
    c.reset();
    // one warm-up each, not counted
    c.pier(); c.podman(); c.reset();
    for (let i = 0; i < N; i++) {
      if (i % 2 === 0) { p.push(timed(c.pier)); q.push(timed(c.podman)); } else { q.push(timed(c.podman)); p.push(timed(c.pier)); }
      c.reset();
    }
    const ratios = p.map((x, i) => x / q[i]).sort((a, b) => a - b);
    rows.push(`| ${c.name} | ${median(p).toFixed(0)} ms | ${median(q).toFixed(0)} ms | ${(median(p) / median(q)).toFixed(2)} | ${ratios[0].toFixed(2)}–${ratios[ratios.length - 1].toFixed(2)} |`);
  }
  process.stdout.write([
    `| \`cp\` (median of ${N}) | pier | podman 4.3 | pier / podman | per-round range |`,
    '|---|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n'));
} finally {
  peer.close();
}
