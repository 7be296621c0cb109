/**
 * bench/registry: pier's registry server against Debian's docker-registry (distribution 2.8.2), side
 * by side in one run, with pier's own client for both so only the server differs.
 *   - servers: `bin/pier registry serve` and `docker-registry serve` (config written here: 127.0.0.1,
 *     filesystem storage, access log off on both), each a child process with storage in a temp dir on the
 *     same disk; both are started afresh, on empty storage, for every run
 *   - big image: 8 layers of 128 MiB random (incompressible) bytes plus a config, in a temp PIER_ROOT;
 *     push = `Pusher` (HEAD, POST, one PUT per blob, 4 blobs at once), pull = `Puller` into an empty
 *     PIER_ROOT (the content store verifies every blob)
 *     and the server's CPU time during it (from /proc/<pid>/stat); then the layers again to curl into
 *     /dev/null (4 at a time), which shows the server's own pace — the image pull is bound by the
 *     client's sha256 and disk writes, the same for both servers
 *   - 50 clients: 50 `RegistryClient`s at once, each 5 rounds of: push a 32 KiB layer and a config
 *     (HEAD, POST, PUT each), PUT a manifest, GET it back and GET both blobs (verified) = 10 requests
 * Every phase starts with a `sync` (untimed), so none pays for an earlier one's writeback (see
 * settleDisk). Before the measured runs, one warm-up run against each server (not counted), so the
 * first measured server does not pay alone for the client's cold code and the machine's first touch
 * of memory. Runs then alternate which server goes first; medians of N, with the range of the
 * per-run ratios (each run measures both servers back to back). Prints a markdown table; the per-run
 * times and the load average go to stderr.
 * Usage: node bench/registry.ts [N=3]
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageService } from '../src/image/index.ts';
import { Pusher, Puller, RegistryClient, parseRemoteReference } from '../src/registry/index.ts';
import { startRegistry as startDistribution } from '../test/helpers/registry.ts';
import { makeRandomImage, startPierRegistry } from './registry-common.ts';

const N = Number(process.argv[2] ?? 3);
const LAYERS = 8;
const LAYER_SIZE = 128 << 20;
const CLIENTS = 50;
const ROUNDS = 5;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const TMP = mkdtempSync(join('/var/tmp', 'pier-bench-registry-'));

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Server { name: string; host: string; pid: number; stop(): Promise<void> }

/** CPU time (user + system, all threads) a process has used so far, in ms. */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // utime, stime in clock ticks (100 Hz)
}

async function startPier(dir: string): Promise<Server> {
  return { name: 'pier', ...await startPierRegistry(join(dir, 'data')) };
}

async function startDist(dir: string): Promise<Server> {
  const r = await startDistribution(dir);
  return { name: 'docker-registry', host: r.host, pid: r.proc.pid!, stop: r.stop };
}

async function pushBig(srcRoot: string, host: string): Promise<number> {
  rmSync(join(srcRoot, 'registry'), { recursive: true, force: true }); // no mounts from earlier runs
  const t = performance.now();
  await new Pusher(new ImageService({ root: srcRoot }), parseRemoteReference(`${host}/bench/big:1`), { plainHttp: true }).push('big:1');
  return performance.now() - t;
}

async function pullBig(dstRoot: string, host: string): Promise<number> {
  const t = performance.now();
  await new Puller(new ImageService({ root: dstRoot }), parseRemoteReference(`${host}/bench/big:1`), { plainHttp: true }).pull();
  return performance.now() - t;
}

/**
 * The server's side of a pull alone: every layer fetched by curl into /dev/null, 4 at a time as the
 * puller does — no hashing, no disk, no Node parser — so the server, not the client, sets the pace.
 */
async function serveBig(host: string, digests: string[]): Promise<number> {
  const t = performance.now();
  const queue = [...digests];
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let d = queue.shift(); d; d = queue.shift()) {
      const url = `http://${host}/v2/bench/big/blobs/${d}`;
      const code = await new Promise<string>((resolve, reject) => {
        const c = spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', url], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        c.stdout!.on('data', (b: Buffer) => { out += b; });
        c.on('error', reject);
        c.on('exit', () => resolve(out));
      });
      if (code !== '200') throw new Error(`curl ${url}: ${code}`);
    }
  }));
  return performance.now() - t;
}

/** 50 clients at once, ROUNDS small push+pull cycles each; returns [ms, requests]. */
async function manyClients(host: string): Promise<[number, number]> {
  let requests = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
    const client = new RegistryClient(host, { plainHttp: true });
    try {
      for (let r = 0; r < ROUNDS; r++) {
        const repo = `many/c${i}`;
        const layer = randomBytes(32 << 10);
        const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', client: i, round: r }));
        for (const b of [config, layer]) {
          const d = sha(b);
          if (await client.hasBlob(repo, d, true)) throw new Error(`${d} already there`);
          const loc = await client.startUpload(repo);
          await client.putBlob(repo, loc, d, b.length, () => Readable.from([b]));
          requests += 3;
        }
        const manifest = Buffer.from(JSON.stringify({
          schemaVersion: 2, mediaType: OCI_MANIFEST,
          config: { mediaType: OCI_CONFIG, digest: sha(config), size: config.length },
          layers: [{ mediaType: OCI_LAYER, digest: sha(layer), size: layer.length }],
        }));
        await client.putManifest(repo, `r${r}`, manifest, OCI_MANIFEST);
        const m = await client.getManifest(repo, `r${r}`);
        if (m.digest !== sha(manifest)) throw new Error('manifest mismatch');
        for (const b of [config, layer]) {
          const s = await client.getBlob(repo, sha(b));
          const h = createHash('sha256');
          for await (const c of s) h.update(c as Buffer);
          if (`sha256:${h.digest('hex')}` !== sha(b)) throw new Error('blob mismatch');
        }
        requests += 4;
      }
    } finally {
      client.close();
    }
  }));
  return [performance.now() - t, requests];
}

/**
 * Flush every dirty page to disk (untimed) before a phase, so no phase pays for an earlier one's
 * writeback: distribution leaves a push's GiB dirty in the page cache (the kernel writes it out some
 * 30 s later, in whatever run is going on then), pier fsyncs each blob before acknowledging it, and
 * the pull's client fsyncs what it stores.
 */
function settleDisk(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

async function main(): Promise<void> {
  const src = join(TMP, 'src');
  const { bytes, layers } = await makeRandomImage(src, LAYERS, LAYER_SIZE);
  const layerBytes = LAYERS * LAYER_SIZE;
  const res: Record<string, { push: number[]; pull: number[]; pullCpu: number[]; serve: number[]; many: number[] }> = {
    pier: { push: [], pull: [], pullCpu: [], serve: [], many: [] }, 'docker-registry': { push: [], pull: [], pullCpu: [], serve: [], many: [] },
  };
  let requests = 0;
  for (let run = -1; run < N; run++) {
    const order = run % 2 === 0 ? [startPier, startDist] : [startDist, startPier];
    for (const start of order) {
      const dir = mkdtempSync(join(TMP, 'srv-'));
      const srv = await start(dir);
      try {
        const dst = join(dir, 'pulled');
        settleDisk();
        const push = await pushBig(src, srv.host);
        settleDisk();
        const cpu0 = cpuMs(srv.pid);
        const pull = await pullBig(dst, srv.host);
        const pullCpu = cpuMs(srv.pid) - cpu0;
        rmSync(dst, { recursive: true, force: true });
        settleDisk();
        const serve = await serveBig(srv.host, layers);
        const [many, n] = await manyClients(srv.host);
        const label = run < 0 ? 'warm-up' : `run ${run + 1}/${N}`;
        console.error(`${label} ${srv.name}: push ${(push / 1000).toFixed(2)} s, pull ${(pull / 1000).toFixed(2)} s (server CPU ${pullCpu} ms), layers to curl ${(serve / 1000).toFixed(2)} s, ${CLIENTS} clients ${(many / 1000).toFixed(2)} s (load ${loadavg()[0].toFixed(2)})`);
        if (run < 0) continue;
        requests = n;
        res[srv.name].push.push(push);
        res[srv.name].pull.push(pull);
        res[srv.name].pullCpu.push(pullCpu);
        res[srv.name].serve.push(serve);
        res[srv.name].many.push(many);
      } finally {
        await srv.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const mbps = (ms: number) => bytes / 1e6 / (ms / 1000);
  const p = res.pier, d = res['docker-registry'];
  // per run, distribution's time over pier's = pier's throughput over distribution's
  type Phase = 'push' | 'pull' | 'pullCpu' | 'serve' | 'many';
  const ratios = (k: Phase) => p[k].map((t, i) => d[k][i] / t);
  const range = (k: Phase) => { const r = ratios(k); return `${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)}×`; };
  const rows: [string, number, number, string][] = [
    [`push ${(bytes / 2 ** 30).toFixed(2)} GiB image (${LAYERS} × ${LAYER_SIZE >> 20} MiB random layers), MB/s`, mbps(median(p.push)), mbps(median(d.push)), range('push')],
    [`pull of the same image (pier's client: verifies, fsyncs), MB/s`, mbps(median(p.pull)), mbps(median(d.pull)), range('pull')],
    [`  server CPU during that pull, MB per CPU-second`, mbps(median(p.pullCpu)), mbps(median(d.pullCpu)), range('pullCpu')],
    [`its ${LAYERS} layers to curl > /dev/null, 4 at a time (the server's pace), MB/s`, layerBytes / 1e6 / (median(p.serve) / 1000), layerBytes / 1e6 / (median(d.serve) / 1000), range('serve')],
    [`${CLIENTS} concurrent clients, ${requests} requests (small push + pull), requests/s`, requests / (median(p.many) / 1000), requests / (median(d.many) / 1000), range('many')],
  ];
  console.log(`| workload (median of ${N}) | pier | docker-registry 2.8.2 | pier / distribution | per-run range |`);
  console.log('|---|---:|---:|---:|---:|');
  for (const [w, a, b, r] of rows) console.log(`| ${w} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(a / b).toFixed(2)}× | ${r} |`);
}

try {
  await main();
} finally {
  rmSync(TMP, { recursive: true, force: true });
}
