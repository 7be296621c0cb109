/**
 * bench/images-unpack: pier's layer unpack against `umoci unpack`, on one OCI layout holding a Debian
 * bookworm minbase rootfs (~200 MB) as a single gzip layer.
 *   - rootfs: `debootstrap --variant=minbase bookworm` once, cached in /var/cache/pier-bench/rootfs
 *     (mirror taken from the machine's apt sources)
 *   - layout: made with pier's own packDirectory (gzip, SOURCE_DATE_EPOCH) plus a hand-written config,
 *     manifest and index; umoci reads it as any OCI layout
 *   - pier: applyLayer(format 'overlay') into an empty dir, what the snapshotter does per layer
 *   - umoci: `umoci unpack --image layout:base bundle` (which also writes its mtree manifest)
 * Runs alternate, each after `sync` and without deleting earlier outputs, on the disk (/var/cache/pier-bench/run) and on tmpfs (/dev/shm),
 * the second showing CPU cost without this VM's slow inode creation. Prints medians and the ratio.
 * Usage: node bench/images-unpack.ts [N=5]   (root; umoci and debootstrap from Debian)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyLayer, packDirectory } from '../src/image/layer/index.ts';

const N = Number(process.argv[2] ?? 5);
const CACHE = '/var/cache/pier-bench';
const ROOTFS = join(CACHE, 'rootfs');
const LAYOUT = join(CACHE, 'layout');

function mirror(): string {
  const files = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f)) : [])];
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    const m = /^URIs:\s*(\S+)/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(text);
    if (m && !m[1].includes('security')) return m[1];
  }
  throw new Error('no Debian mirror in /etc/apt/sources.list*');
}

function ensureRootfs(): void {
  if (existsSync(join(ROOTFS, 'usr/bin/apt'))) return;
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${ROOTFS}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  console.error(`bench: debootstrap --variant=minbase bookworm (${mirror()}) …`);
  execFileSync('debootstrap', ['--variant=minbase', 'bookworm', tmp, mirror()], { stdio: ['ignore', 'ignore', 'inherit'] });
  renameSync(tmp, ROOTFS);
}

function putBlob(data: Buffer): { digest: string; size: number } {
  const hex = createHash('sha256').update(data).digest('hex');
  writeFileSync(join(LAYOUT, 'blobs/sha256', hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

async function ensureLayout(): Promise<string> {
  const marker = join(LAYOUT, 'layer.json');
  if (existsSync(marker)) return JSON.parse(readFileSync(marker, 'utf8')).path as string;
  rmSync(LAYOUT, { recursive: true, force: true });
  mkdirSync(join(LAYOUT, 'blobs/sha256'), { recursive: true });
  const tmp = join(LAYOUT, 'layer.tmp');
  const blob = await packDirectory(ROOTFS, tmp, { compression: 'gzip', sourceDateEpoch: 1_700_000_000 });
  const layerPath = join(LAYOUT, 'blobs/sha256', blob.digest.slice(7));
  renameSync(tmp, layerPath);
  const config = putBlob(Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['bash'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [blob.diffId] },
  })));
  const manifest = putBlob(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: blob.mediaType, digest: blob.digest, size: blob.size }],
  })));
  writeFileSync(join(LAYOUT, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(LAYOUT, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{
    mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'base' } }] }));
  writeFileSync(marker, JSON.stringify({ path: layerPath, ...blob }));
  return layerPath;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function runPier(layer: string, dir: string): Promise<number> {
  mkdirSync(dir);
  const t = performance.now();
  await applyLayer(createReadStream(layer, { highWaterMark: 1 << 20 }), dir, { format: 'overlay' });
  return (performance.now() - t) / 1000;
}

function runUmoci(dir: string): number {
  const t = performance.now();
  execFileSync('umoci', ['unpack', '--image', `${LAYOUT}:base`, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (performance.now() - t) / 1000;
}

ensureRootfs();
const layer = await ensureLayout();
const size = statSync(layer).size;
console.log(`layer: ${(size / 1e6).toFixed(1)} MB gzip of ${ROOTFS}; ${N} runs each, alternating\n`);
console.log('| target | pier (s) | umoci unpack (s) | ratio |');
console.log('|---|---|---|---|');
for (const [label, base] of [['disk (ext4)', join(CACHE, 'run')], ['tmpfs', '/dev/shm/pier-bench']] as const) {
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const pier: number[] = [];
  const umoci: number[] = [];
  for (let i = 0; i < N; i++) {
    for (const which of i % 2 ? ['umoci', 'pier'] : ['pier', 'umoci']) {
      const dir = join(base, `${which}-${i}`);
      execFileSync('sync');
      if (which === 'pier') pier.push(await runPier(layer, dir));
      else umoci.push(runUmoci(dir));
    }
  }
  // Deleting between runs made the next run wait on the freed blocks' discards (ext4 `discard`):
  // outputs are kept until the end instead.
  rmSync(base, { recursive: true, force: true });
  execFileSync('sync');
  const p = median(pier);
  const u = median(umoci);
  console.log(`| ${label} | ${p.toFixed(2)} | ${u.toFixed(2)} | ${(u / p).toFixed(2)}× |`);
}
