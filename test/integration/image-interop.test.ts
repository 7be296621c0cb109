/**
 * Interop with Debian's image tools, both ways: pier's exports are read by skopeo and unpacked by
 * umoci; layouts and archives made by umoci, skopeo and buildah are imported by pier. Drives the
 * CLI (`node src/cli/pier.ts image …`) with a private PIER_ROOT.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, tempDir } from '../helpers/image.ts';

const TOP = join(import.meta.dirname, '..', '..');
let work = '';
let root = '';

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function pier(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [join(TOP, 'src/cli/pier.ts'), 'image', ...args], { encoding: 'utf8', env: { ...process.env, PIER_ROOT: root }, timeout: 300_000 });
}

function pierOk(args: string[]): string {
  const r = pier(args);
  if (r.status !== 0) throw new Error(`pier image ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

before(() => {
  work = tempDir('pier-image-interop-');
  root = join(work, 'root');
});
after(() => cleanup(work));

test('bootstrap busybox is reproducible and lists', () => {
  const out = pierOk(['bootstrap', 'busybox']);
  const digest = /\((sha256:[a-f0-9]{64})\)/.exec(out)?.[1];
  assert.ok(digest, out);
  const r2 = spawnSync(process.execPath, [join(TOP, 'src/cli/pier.ts'), 'image', 'bootstrap', 'busybox'], { encoding: 'utf8', env: { ...process.env, PIER_ROOT: join(work, 'root2') } });
  assert.ok(r2.stdout.includes(digest), 'same busybox, same digest');
  const ls = pierOk(['ls']);
  assert.match(ls, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n/);
  assert.match(ls, new RegExp(`busybox\\s+latest\\s+${digest.slice(7, 19)}`));
  const cfg = JSON.parse(pierOk(['inspect', 'busybox']))[0].config;
  assert.deepEqual(cfg.config.Cmd, ['sh']);
  const bad = pier(['inspect', 'nope']);
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, 'pier: image "nope:latest" not found\n');
});

test('pier export → skopeo inspect and umoci unpack', { skip: !have('skopeo') || !have('umoci') }, () => {
  const digest = JSON.parse(pierOk(['inspect', 'busybox']))[0].digest;
  pierOk(['export', '-o', join(work, 'lay'), 'busybox']);
  pierOk(['export', '-o', join(work, 'lay.tar'), 'busybox']);
  const info = JSON.parse(sh('skopeo', ['inspect', `oci:${join(work, 'lay')}:latest`]));
  assert.equal(info.Digest, digest);
  assert.equal(info.Architecture, 'amd64');
  assert.equal(JSON.parse(sh('skopeo', ['inspect', `oci-archive:${join(work, 'lay.tar')}:latest`])).Digest, digest);
  sh('umoci', ['unpack', '--image', 'lay:latest', 'bundle'], { cwd: work });
  const rootfs = join(work, 'bundle', 'rootfs');
  assert.equal(readlinkSync(join(rootfs, 'bin', 'sh')), '/bin/busybox');
  assert.ok(lstatSync(join(rootfs, 'bin', 'busybox')).isFile());
  assert.match(readFileSync(join(rootfs, 'etc', 'passwd'), 'utf8'), /^root:x:0:0:/);
  if (process.getuid?.() === 0) assert.equal(sh('chroot', [rootfs, '/bin/sh', '-c', 'echo hi from $(basename $0)']), 'hi from sh\n');
});

test('umoci init/new/insert → pier import', { skip: !have('umoci') }, () => {
  sh('umoci', ['init', '--layout', join(work, 'um')]);
  sh('umoci', ['new', '--image', `${join(work, 'um')}:v1`]);
  mkdirSync(join(work, 'payload', 'etc'), { recursive: true });
  writeFileSync(join(work, 'payload', 'etc', 'motd'), 'made by umoci\n');
  sh('umoci', ['insert', '--image', `${join(work, 'um')}:v1`, join(work, 'payload'), '/']);
  sh('umoci', ['config', '--image', `${join(work, 'um')}:v1`, '--config.cmd', '/bin/true']);
  const idx = JSON.parse(readFileSync(join(work, 'um', 'index.json'), 'utf8'));
  const want = idx.manifests.find((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === 'v1').digest;
  assert.match(pierOk(['import', '--ref', 'umoci-made:v1', join(work, 'um')]), new RegExp(`Imported: umoci-made:v1 \\(${want}\\)`));
  const img = JSON.parse(pierOk(['inspect', 'umoci-made:v1']))[0];
  assert.deepEqual(img.config.config.Cmd, ['/bin/true']);
  assert.equal(img.manifest.layers.length, 1);
});

test('skopeo copy (oci-archive and docker-archive) → pier import', { skip: !have('skopeo') }, () => {
  const digest = JSON.parse(pierOk(['inspect', 'busybox']))[0].digest;
  sh('skopeo', ['copy', `oci:${join(work, 'lay')}:latest`, `oci-archive:${join(work, 'sk.tar')}:sk`]);
  assert.match(pierOk(['import', join(work, 'sk.tar')]), new RegExp(`Imported: sk:sk \\(${digest}\\)`));
  sh('skopeo', ['copy', `oci:${join(work, 'lay')}:latest`, `oci:${join(work, 'sklay')}:v9`]);
  assert.match(pierOk(['import', '--ref', 'fromdir', join(work, 'sklay')]), /Imported: fromdir:latest/);
  // docker-archive: skopeo writes docker-save format with uncompressed layers.
  sh('skopeo', ['copy', `oci:${join(work, 'lay')}:latest`, `docker-archive:${join(work, 'dk.tar')}:dk/busy:1`]);
  const out = pierOk(['import', join(work, 'dk.tar')]);
  assert.match(out, /Imported: docker\.io\/dk\/busy:1|Imported: dk\/busy:1/);
  const ref = /Imported: (\S+)/.exec(out)![1];
  const img = JSON.parse(pierOk(['inspect', ref]))[0];
  assert.equal(img.manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar');
  assert.deepEqual(img.config.config.Cmd, ['sh']);
  // And back out: what pier imported from docker-archive exports so skopeo reads it.
  pierOk(['export', '-o', join(work, 'dk-out'), ref]);
  assert.equal(JSON.parse(sh('skopeo', ['inspect', `oci:${join(work, 'dk-out')}:1`])).Digest, img.digest);
});

test('buildah bud --isolation chroot (FROM scratch + COPY) → pier import', { skip: !have('buildah') || process.getuid?.() !== 0 }, () => {
  const ctx = join(work, 'ctx');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'hello.txt'), 'hello from buildah\n');
  writeFileSync(join(ctx, 'Containerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\nCMD ["/hello"]\n');
  const common = ['--root', join(work, 'buildah-root'), '--runroot', join(work, 'buildah-run'), '--storage-driver', 'vfs'];
  sh('buildah', [...common, 'bud', '--isolation', 'chroot', '-t', 'localhost/bh:1', '-f', join(ctx, 'Containerfile'), ctx]);
  sh('buildah', [...common, 'push', 'localhost/bh:1', `oci-archive:${join(work, 'bh.tar')}`]);
  assert.match(pierOk(['import', '--ref', 'built:1', join(work, 'bh.tar')]), /Imported: built:1/);
  const img = JSON.parse(pierOk(['inspect', 'built:1']))[0];
  assert.deepEqual(img.config.config.Cmd, ['/hello']);
  assert.equal(img.manifest.layers.length, 1);
  assert.ok(existsSync(join(root, 'images', 'blobs', 'sha256', img.manifest.layers[0].digest.slice(7))));
});

test('rm, tag, history and prune from the CLI', () => {
  pierOk(['tag', 'busybox', 'mybox:1']);
  assert.match(pierOk(['history', 'mybox:1']), /pier image bootstrap busybox/);
  assert.match(pierOk(['rm', 'mybox:1']), /Untagged: mybox:1/);
  assert.equal(pier(['rm', 'mybox:1']).stderr, 'pier: image "mybox:1" not found\n');
  const pr = JSON.parse(pierOk(['prune', '--format', 'json']));
  assert.equal(pr.dryRun, false);
  assert.ok(JSON.parse(pierOk(['ls', '--format', 'json'])).some((i: { ref: string }) => i.ref === 'busybox:latest'));
});
