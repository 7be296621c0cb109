/** What the registry benches share: `bin/pier registry serve` as a child, and the random test image. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageService } from '../src/image/index.ts';

const TOP = join(import.meta.dirname, '..');

export interface PierRegistry { host: string; pid: number; stop(): Promise<void> }

/** Serve `storage` (access log off); `extra` adds flags such as --tls-cert/--tls-key. */
export async function startPierRegistry(storage: string, extra: string[] = []): Promise<PierRegistry> {
  const proc = spawn(join(TOP, 'bin', 'pier'), ['registry', 'serve', '--listen', '127.0.0.1:0', '--storage', storage, '--access-log', 'none', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const host = await new Promise<string>((resolve, reject) => {
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on https?:\/\/(\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.once('exit', (code) => reject(new Error(`pier registry serve exited ${code}`)));
  });
  return {
    host,
    pid: proc.pid!,
    stop: () => new Promise<void>((r) => { if (proc.exitCode !== null) return r(); proc.once('exit', () => r()); proc.kill('SIGTERM'); }),
  };
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/**
 * An image of `layers` random (incompressible) layers of `layerSize` bytes plus a config, tagged
 * `big:1` in its own PIER_ROOT. Returns the bytes a pull moves (config + layers) and the layer digests.
 */
export async function makeRandomImage(root: string, layers: number, layerSize: number): Promise<{ bytes: number; layers: string[] }> {
  const svc = new ImageService({ root });
  svc.content.init();
  const descs: { mediaType: string; digest: string; size: number }[] = [];
  for (let i = 0; i < layers; i++) {
    const gen = function* () { for (let n = 0; n < layerSize; n += 4 << 20) yield randomBytes(Math.min(4 << 20, layerSize - n)); };
    const w = await svc.content.write(Readable.from(gen()));
    descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: w.digest, size: w.size });
  }
  const c = await svc.content.write(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: descs.map((l) => l.digest) } })));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: c.digest, size: c.size }, layers: descs }));
  const m = await svc.content.write(manifest);
  await svc.refs.set('big:1', { mediaType: OCI_MANIFEST, digest: m.digest, size: m.size });
  return { bytes: c.size + descs.reduce((s, l) => s + l.size, 0), layers: descs.map((l) => l.digest) };
}
