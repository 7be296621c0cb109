/**
 * bench/registry-tls: pier's registry client against skopeo (Debian's 1.9) over HTTPS, side by side
 * in one run, both talking to the same `bin/pier registry serve --tls-cert … --tls-key …` on
 * loopback with a self-signed certificate trusted through a cert dir (`--cert-dir` for pier,
 * `--src-cert-dir`/`--dest-cert-dir` for skopeo).
 *   - image: 4 layers of 128 MiB random bytes plus a config, in a temp PIER_ROOT, also exported as an
 *     OCI layout for skopeo to push from
 *   - push: `pier push` vs `skopeo copy oci:LAYOUT docker://…`, each into a freshly started, empty
 *     registry (so no blob is skipped)
 *   - pull: `pier pull` into an empty PIER_ROOT (verified, fsynced blobs) vs `skopeo copy docker://…
 *     dir:DIR` (verified blobs) from the same registry
 * Both are whole CLI runs (process start included). Every phase starts with a `sync` (untimed); runs
 * alternate who goes first; medians of N and the range of per-run ratios. Prints a markdown table.
 * Usage: node bench/registry-tls.ts [N=3]
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { makeRandomImage, startPierRegistry } from './registry-common.ts';

const N = Number(process.argv[2] ?? 3);
const TOP = join(import.meta.dirname, '..');
const PIER = join(TOP, 'bin', 'pier');
const LAYERS = 4;
const LAYER_SIZE = 128 << 20;
const TMP = mkdtempSync(join('/var/tmp', 'pier-bench-registry-tls-'));
const CERTS = join(TMP, 'certs');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function run(cmd: string, args: string[], env: Record<string, string> = {}): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
}

function timed(cmd: string, args: string[], env: Record<string, string> = {}): number {
  spawnSync('sync');
  const t = performance.now();
  run(cmd, args, env);
  return performance.now() - t;
}

function startRegistry(dir: string): ReturnType<typeof startPierRegistry> {
  return startPierRegistry(dir, ['--tls-cert', join(TMP, 'tls.crt'), '--tls-key', join(TMP, 'tls.key')]);
}

async function main(): Promise<void> {
  run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(TMP, 'tls.key'), '-out', join(TMP, 'tls.crt')]);
  mkdirSync(CERTS);
  copyFileSync(join(TMP, 'tls.crt'), join(CERTS, 'ca.crt'));
  const src = join(TMP, 'src');
  const { bytes } = await makeRandomImage(src, LAYERS, LAYER_SIZE);
  const layout = join(TMP, 'layout');
  run(PIER, ['image', 'export', '--output', layout, 'big:1'], { PIER_ROOT: src });
  const tag = (JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] })
    .manifests[0].annotations?.['org.opencontainers.image.ref.name'] ?? '1';
  const t: Record<'pier' | 'skopeo', { push: number[]; pull: number[] }> = { pier: { push: [], pull: [] }, skopeo: { push: [], pull: [] } };
  const pushWith = {
    pier: (host: string) => timed(PIER, ['push', '-q', '--cert-dir', CERTS, 'big:1', `${host}/bench/big:1`], { PIER_ROOT: src }),
    skopeo: (host: string) => timed('skopeo', ['copy', '-q', '--dest-cert-dir', CERTS, `oci:${layout}:${tag}`, `docker://${host}/bench/big:1`]),
  };
  const pullWith = {
    pier: (host: string, i: number) => timed(PIER, ['pull', '-q', '--cert-dir', CERTS, `${host}/bench/big:1`], { PIER_ROOT: join(TMP, `pull-pier-${i}`) }),
    skopeo: (host: string, i: number) => timed('skopeo', ['copy', '-q', '--src-cert-dir', CERTS, `docker://${host}/bench/big:1`, `dir:${join(TMP, `pull-skopeo-${i}`)}`]),
  };
  for (let i = -1; i < N; i++) { // run -1 warms up, not counted
    const order = (i & 1) === 0 ? (['pier', 'skopeo'] as const) : (['skopeo', 'pier'] as const);
    for (const who of order) {
      const reg = await startRegistry(join(TMP, `storage-${who}-${i}`));
      try {
        const push = pushWith[who](reg.host);
        if (i >= 0) t[who].push.push(push);
      } finally {
        await reg.stop();
      }
      rmSync(join(TMP, `storage-${who}-${i}`), { recursive: true, force: true });
    }
    const reg = await startRegistry(join(TMP, `storage-pull-${i}`));
    try {
      pushWith.pier(reg.host);
      for (const who of order) {
        const pull = pullWith[who](reg.host, i);
        if (i >= 0) t[who].pull.push(pull);
        rmSync(join(TMP, `pull-${who}-${i}`), { recursive: true, force: true });
      }
    } finally {
      await reg.stop();
    }
    rmSync(join(TMP, `storage-pull-${i}`), { recursive: true, force: true });
    if (i >= 0) process.stderr.write(`run ${i}: push pier ${t.pier.push[i].toFixed(0)} ms, skopeo ${t.skopeo.push[i].toFixed(0)} ms; pull pier ${t.pier.pull[i].toFixed(0)} ms, skopeo ${t.skopeo.pull[i].toFixed(0)} ms; load ${loadavg()[0].toFixed(2)}\n`);
  }
  const mbs = (ms: number) => bytes / 1e6 / (ms / 1000);
  const range = (a: number[], b: number[]) => { const r = a.map((x, k) => b[k] / x); return `${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)}×`; };
  process.stdout.write(`| ${(bytes / 2 ** 20).toFixed(0)} MiB over HTTPS (median of ${N}) | pier | skopeo | ratio | per-run range |\n|---|---:|---:|---:|---:|\n`);
  for (const phase of ['push', 'pull'] as const) {
    const p = median(t.pier[phase]), s = median(t.skopeo[phase]);
    process.stdout.write(`| ${phase}, MB/s | ${mbs(p).toFixed(0)} | ${mbs(s).toFixed(0)} | ${(s / p).toFixed(2)}× | ${range(t.pier[phase], t.skopeo[phase])} |\n`);
  }
}

main().finally(() => rmSync(TMP, { recursive: true, force: true })).catch((err) => { console.error(err); process.exitCode = 1; });
