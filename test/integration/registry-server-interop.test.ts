/**
 * pier's registry with Debian's clients: skopeo copies an OCI layout (from `pier image bootstrap
 * busybox` + `pier image export`) to the registry and back, byte-identical manifests; podman pulls,
 * pushes and pulls again with private storage; a multi-platform image made by `pier manifest` is
 * copied whole by skopeo and back, and podman pulls one platform of it. The server runs as
 * `pier registry serve`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { arm64Image, cleanup, tempDir } from '../helpers/image.ts';
import { ImageService, MEDIA_TYPES } from '../../src/image/index.ts';

const TOP = join(import.meta.dirname, '..', '..');
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
let work = '';
let host = '';
let server: ChildProcess | undefined;
let manifestDigest = '';

function sh(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

before(async () => {
  work = tempDir('pier-registry-interop-');
  const env = { PIER_ROOT: join(work, 'root') };
  const out = sh(process.execPath, [join(TOP, 'src/cli/pier.ts'), 'image', 'bootstrap', 'busybox'], env);
  manifestDigest = /\((sha256:[a-f0-9]{64})\)/.exec(out)![1];
  sh(process.execPath, [join(TOP, 'src/cli/pier.ts'), 'image', 'export', '--output', join(work, 'layout'), 'busybox'], env);
  server = spawn(process.execPath, [join(TOP, 'src/cli/pier.ts'), 'registry', 'serve', '--listen', '127.0.0.1:0', '--storage', join(work, 'storage'), '--access-log', 'none'], { stdio: ['ignore', 'pipe', 'inherit'] });
  host = await new Promise<string>((resolve, reject) => {
    let buf = '';
    server!.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      const m = /listening on http:\/\/(\S+)/.exec(buf);
      if (m) resolve(m[1]);
    });
    server!.once('exit', (code) => reject(new Error(`pier registry serve exited ${code}`)));
  });
});

after(async () => {
  if (server && server.exitCode === null) {
    const done = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await done;
  }
  cleanup(work);
});

test('skopeo copy oci: → pier registry → oci:, manifest bytes preserved', { skip: !have('skopeo') }, () => {
  sh('skopeo', ['copy', '--dest-tls-verify=false', `oci:${join(work, 'layout')}:latest`, `docker://${host}/library/busybox:1.0`]);
  const raw = sh('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${host}/library/busybox:1.0`]);
  const layoutIndex = JSON.parse(readFileSync(join(work, 'layout', 'index.json'), 'utf8'));
  assert.equal(layoutIndex.manifests[0].digest, manifestDigest);
  assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, manifestDigest);
  const tags = JSON.parse(sh('skopeo', ['list-tags', '--tls-verify=false', `docker://${host}/library/busybox`]));
  assert.deepEqual(tags.Tags, ['1.0']);
  sh('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/library/busybox:1.0`, `oci:${join(work, 'back')}:copied`]);
  const back = JSON.parse(readFileSync(join(work, 'back', 'index.json'), 'utf8'));
  assert.equal(back.manifests[0].digest, manifestDigest);
  assert.equal(back.manifests[0].annotations['org.opencontainers.image.ref.name'], 'copied');
});

test('podman pull, push and pull again', { skip: !have('podman') || !have('skopeo') }, () => {
  const podman = (args: string[]) => sh('podman', ['--root', join(work, 'podman-root'), '--runroot', join(work, 'podman-run'), '--storage-driver', 'vfs', ...args]);
  podman(['pull', '--tls-verify=false', `${host}/library/busybox:1.0`]);
  podman(['tag', `${host}/library/busybox:1.0`, `${host}/podman/bb:v2`]);
  podman(['push', '--tls-verify=false', `${host}/podman/bb:v2`]);
  const tags = JSON.parse(sh('skopeo', ['list-tags', '--tls-verify=false', `docker://${host}/podman/bb`]));
  assert.deepEqual(tags.Tags, ['v2']);
  podman(['rmi', '-a', '-f']);
  podman(['pull', '--tls-verify=false', `${host}/podman/bb:v2`]);
  const images = podman(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.match(images, new RegExp(`${host.replace(/\./g, '\\.')}/podman/bb:v2`));
  podman(['rmi', '-a', '-f']);
});

test('a multi-platform image from pier manifest: skopeo copies it whole and back, podman pulls one platform', { skip: !have('podman') || !have('skopeo') }, async () => {
  const root = join(work, 'root');
  const pier = (args: string[], r = root) => sh(process.execPath, [join(TOP, 'src/cli/pier.ts'), ...args], { PIER_ROOT: r });
  const svc = new ImageService({ root });
  const { arm } = await arm64Image(svc);
  await svc.refs.set('bb-arm:1', arm);
  pier(['manifest', 'create', 'multi:1', 'busybox:latest', 'bb-arm:1']);
  const index = svc.refs.get('multi:1')!;
  pier(['manifest', 'push', 'multi:1', `${host}/multi/bb:1`]);
  const raw = sh('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${host}/multi/bb:1`]);
  assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, index.digest, 'skopeo reads the index pier pushed, byte for byte');
  assert.equal(JSON.parse(raw).mediaType, MEDIA_TYPES.ociIndex);
  // whole, out to an OCI layout and back into another repository; pier pulls it whole
  const layout = join(work, 'multi-layout');
  sh('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${host}/multi/bb:1`, `oci:${layout}:m`]);
  assert.ok(JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', arm.digest.slice(7)), 'utf8')).layers.length > 0, 'the arm64 manifest came along');
  sh('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${layout}:m`, `docker://${host}/multi/back:1`]);
  const fresh = join(work, 'multi-fresh');
  assert.match(pier(['pull', '--all-platforms', `${host}/multi/back:1`], fresh), new RegExp(`digest: ${index.digest}`));
  // podman picks the arm64 image out of pier's index
  const podman = (args: string[]) => sh('podman', ['--root', join(work, 'podman-root'), '--runroot', join(work, 'podman-run'), '--storage-driver', 'vfs', ...args]);
  podman(['pull', '--tls-verify=false', '--platform', 'linux/arm64/v8', `${host}/multi/bb:1`]);
  const inspect = JSON.parse(podman(['image', 'inspect', `${host}/multi/bb:1`]))[0];
  assert.equal(inspect.Architecture, 'arm64');
  assert.equal(inspect.Digest, index.digest);
  podman(['rmi', '-a', '-f']);
});
