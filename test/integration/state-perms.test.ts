/**
 * A local user against pier's state (issue 10, finding 2; the CVE-2021-41091 class), written as the
 * attack: a set-id-root program that reports its euid, shipped in an image layer (`COPY` + `RUN
 * chmod 4755`) and planted in a running container (`pier cp` + `exec chmod 4755`), which user nobody
 * then tries to run through its host paths (the container's rootfs and upper dir, the layer's
 * snapshot), and image contents nobody tries to list or read. Every attempt must fail with EACCES;
 * the host's overlay must be nosuid,nodev; inside the container a non-root user must still get
 * euid 0 from it, and a device node must still work, as under docker.
 *
 * $PIER_ROOT is opened to 0755 before each attack (what /var/lib/pier made by a package or an older
 * pier looks like): the dirs pier makes below it must keep nobody out on their own.
 *
 * Also: an install with the old 0755 dirs is tightened by ImageService and pierd start; a volume and
 * the rootfs stay usable to a non-root container user; `--runtime runc` (which copies the host
 * mount's flags into the container) keeps set-id inside with the host kept out by the parents; the
 * registry's storage dir is made (and tightened to) 0700.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { testEngine, type TestEngine } from '../helpers/engine.ts';
import { makeTar } from '../helpers/layers.ts';
import { pr } from '../helpers/pier.ts';
import { baseSpec, makeBundle } from '../helpers/rootfs.ts';
import { startRegistry } from '../../src/registry/index.ts';
import { Snapshotter } from '../../src/image/snapshot/index.ts';
import { ROOTFS_SUID_DEV_ANNOTATION } from '../../src/runtime/index.ts';

const RUNC = '/usr/sbin/runc';
const root = process.getuid?.() === 0;
const haveTools = spawnSync('gcc', ['--version']).status === 0 && spawnSync('runuser', ['--version']).status === 0;
const skip = !root ? 'needs root' : !haveTools ? 'needs gcc and runuser' : false;

const work = mkdtempSync(join(tmpdir(), 'pier-perms-'));
// Open, like /var/lib: the trees the tests make under it must keep nobody out on their own.
chmodSync(work, 0o755);
const engines: TestEngine[] = [];
after(async () => {
  for (const e of engines) await e.close();
  rmSync(work, { recursive: true, force: true });
});

/** A static program printing its effective uid: set-id root, it prints euid=0. */
function euidProgram(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const src = join(dir, 'euid.c');
  writeFileSync(src, '#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf("euid=%d\\n", (int)geteuid()); return 0; }\n');
  const r = spawnSync('gcc', ['-static', '-O2', '-o', join(dir, 'euid'), src], { encoding: 'utf8' });
  assert.equal(r.status, 0, `gcc: ${r.stderr}`);
  rmSync(src);
  return join(dir, 'euid');
}

/**
 * Run argv as user nobody with no capabilities. runuser, not setpriv: setpriv keeps root's
 * capabilities (CAP_DAC_OVERRIDE among them) up to its execve, so the path of the program it runs
 * is looked up with them and 0700 dirs do not stop it.
 */
function asNobody(argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('runuser', ['-u', 'nobody', '--', ...argv], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const modeOf = (p: string) => statSync(p).mode & 0o7777;
const octal = (m: number) => m.toString(8).padStart(4, '0');

/** Per-mount options of the mount at exactly `target` in our mount namespace. */
function mountOptions(target: string): string[] | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4] === target) return f[5].split(',');
  }
  return undefined;
}

/**
 * What user nobody got that it must not: runs `path` (it must be refused with EACCES, never reach
 * euid=0), lists `dir`, reads `file`. Each returns a breach description, or nothing.
 */
function nobodyRuns(path: string, what: string): string | undefined {
  assert.ok(existsSync(path), `${what}: ${path} exists (as root)`);
  const r = asNobody([path]);
  if (/euid=0/.test(r.stdout)) return `${what}: user nobody ran ${path} and got ${r.stdout.trim()}`;
  if (r.status === 0) return `${what}: user nobody ran ${path}: ${r.stdout.trim()}`;
  if (!/Permission denied/.test(r.stderr)) return `${what}: ${path} refused for another reason than EACCES: ${r.stderr.trim()}`;
  return undefined;
}

function nobodyLists(dir: string, what: string): string | undefined {
  const r = asNobody(['ls', '-A', dir]);
  if (r.status === 0) return `${what}: user nobody listed ${dir}: ${r.stdout.trim().split('\n').slice(0, 4).join(' ')}`;
  if (!/Permission denied/.test(r.stderr)) return `${what}: ${r.stderr.trim()}`;
  return undefined;
}

function nobodyReads(file: string, what: string): string | undefined {
  const r = asNobody(['cat', file]);
  if (r.status === 0) return `${what}: user nobody read ${file} (${r.stdout.length} bytes)`;
  if (!/Permission denied/.test(r.stderr)) return `${what}: ${r.stderr.trim()}`;
  return undefined;
}

/** Run the attempts with $PIER_ROOT (or another top) opened to 0755; every one must fail. */
function assertNoBreach(top: string, attempts: (() => string | undefined)[]): void {
  const before = modeOf(top);
  chmodSync(top, 0o755);
  try {
    const breaches = attempts.map((a) => a()).filter((b): b is string => b !== undefined);
    assert.deepEqual(breaches, [], `a host user got in:\n  ${breaches.join('\n  ')}`);
  } finally {
    chmodSync(top, before);
  }
}

/** The snapshot dir (`snapshots/<chain>/fs`) whose layer holds `name` with `mode`. */
function snapshotHolding(images: string, name: string, mode: number): string {
  const snaps = join(images, 'snapshots');
  for (const hex of readdirSync(snaps)) {
    const p = join(snaps, hex, 'fs', name);
    try { if (modeOf(p) === mode) return p; } catch { /* not in this layer */ }
  }
  throw new Error(`no snapshot holds ${name} with mode ${octal(mode)}`);
}

test('a host user can neither run a container\'s set-id file as root nor read image contents; the container still can', { skip, timeout: 300_000 }, async () => {
  const e = testEngine();
  engines.push(e);
  const ctx = join(work, 'ctx');
  euidProgram(ctx);
  writeFileSync(join(ctx, 'Containerfile'), 'FROM busybox:latest\nCOPY euid /euid\nRUN chmod 4755 /euid\n');
  e.ok(['build', '-t', 'perms-setid:1', ctx], { timeout: 120_000 });
  const id = e.ok(['run', '-d', '--name', 'victim', 'perms-setid:1', 'sleep', '1000']).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  // Planted by the container: copied in and made set-id root from inside.
  e.ok(['cp', join(ctx, 'euid'), 'victim:/planted']);
  e.ok(['exec', 'victim', 'chmod', '4755', '/planted']);
  // A device node made in the container (CAP_MKNOD, as docker gives): /dev/null's numbers.
  e.ok(['exec', 'victim', 'mknod', '/nulldev', 'c', '1', '3']);

  const images = join(e.root, 'images');
  const mnt = join(images, 'mounts', `ctr-${id}`);
  const rootfs = join(mnt, 'rootfs');
  const layerFile = snapshotHolding(images, 'euid', 0o4755);

  // The attack, with $PIER_ROOT itself world-traversable: the dirs below must hold on their own.
  // The rootfs is mounts as data: made only in the container's own mount namespace. On the host its
  // mount point is an empty dir, so no path there leads to the container's files at all.
  assert.equal(mountOptions(rootfs), undefined, `nothing is mounted on ${rootfs} on the host`);
  assert.deepEqual(readdirSync(rootfs), [], 'the host sees an empty mount point');
  assertNoBreach(e.root, [
    () => nobodyRuns(join(mnt, 'upper', 'planted'), 'planted set-id file via the upper dir'),
    () => nobodyRuns(layerFile, 'layer set-id file via its snapshot'),
    () => nobodyLists(join(images, 'blobs', 'sha256'), 'image blobs'),
    () => nobodyLists(join(mnt, 'upper'), 'the container\'s written files'),
    () => nobodyLists(join(images, 'snapshots'), 'the snapshots'),
    () => nobodyReads(join(images, 'index.json'), 'the image index'),
    () => nobodyReads(join(e.root, 'containers', id, 'container.json'), 'the container record'),
  ]);

  // No host path reaches the container's device node through its rootfs.
  assert.equal(existsSync(join(rootfs, 'nulldev')), false, 'the device node is not on the host\'s mount point');

  // What pier made: root-only down to each container's mount dir and each snapshot.
  for (const d of [e.root, images, join(images, 'blobs'), join(images, 'snapshots'), join(images, 'mounts'), mnt,
    join(layerFile, '..', '..'), join(e.root, 'containers'), join(e.root, 'containers', id), join(e.root, 'volumes'),
    join(e.root, 'networks'), e.run, join(e.run, 'shims'), join(e.run, 'runtime')]) {
    assert.equal(octal(modeOf(d)), '0700', `${d} is root-only`);
  }
  // The container's / keeps the image's mode: only the parents are closed.
  assert.equal(octal(modeOf(join(mnt, 'upper'))), '0755');

  // Inside, set-id and devices work as docker gives them: uid 1000 gets euid 0.
  assert.equal(e.ok(['exec', '-u', '1000', 'victim', '/planted']).trim(), 'euid=0', 'a planted set-id program works in the container');
  assert.equal(e.ok(['exec', '-u', '1000', 'victim', '/euid']).trim(), 'euid=0', 'a set-id program from a layer works in the container');
  assert.equal(e.ok(['exec', '-u', '1000', 'victim', 'id', '-u']).trim(), '1000');
  assert.equal(e.ok(['exec', 'victim', 'sh', '-c', 'echo x > /nulldev && echo wrote']).trim(), 'wrote', 'a device node works in the container');
  const inside = e.ok(['exec', 'victim', 'cat', '/proc/self/mountinfo']).split('\n').map((l) => l.split(' ')).find((f) => f[4] === '/');
  assert.ok(inside, 'the container has a / mount');
  assert.ok(!inside[5].split(',').includes('nosuid') && !inside[5].split(',').includes('nodev'), `the container's / is suid,dev: ${inside[5]}`);
  // ... and that is the container's alone: the host still has no mount of it.
  assert.equal(mountOptions(rootfs), undefined);
  e.ok(['rm', '-f', 'victim']);
});

test('a build step\'s / is suid,dev inside and a set-id program elevates there, as in docker build (the host\'s mount of it is nosuid,nodev: see the snapshotter test)', { skip, timeout: 300_000 }, () => {
  const e = testEngine();
  engines.push(e);
  const ctx = join(work, 'ctx-build');
  mkdirSync(ctx, { recursive: true });
  euidProgram(ctx);
  writeFileSync(join(ctx, 'Containerfile'), [
    'FROM busybox:latest',
    'COPY euid /euid',
    'RUN chmod 4755 /euid',
    'USER 1000',
    `RUN awk '$5 == "/" { print "root-mount " $6 }' /proc/self/mountinfo && id -u && /euid`,
  ].join('\n') + '\n');
  const r = e.pier(['build', '--no-cache', '-t', 'perms-build:1', ctx], { timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout + r.stderr;
  assert.match(out, /^1000$/m, `the step runs as uid 1000: ${out}`);
  assert.match(out, /^euid=0$/m, `a set-id program works in a RUN step (docker leaves no_new_privs off): ${out}`);
  const line = /^root-mount (\S+)$/m.exec(out);
  assert.ok(line, out);
  assert.ok(!line[1].split(',').includes('nosuid') && !line[1].split(',').includes('nodev'), `a RUN step's / is suid,dev: ${line[1]}`);
});

test('snapshotter: every host mount nosuid,nodev (unless asked not to), dirs 0700, copy mode behind 0700 parents', { skip, timeout: 120_000 }, async () => {
  const prog = euidProgram(join(work, 'snap-bin'));
  const tar = await makeTar([{ name: 'euid', mode: 0o4755, body: readFileSync(prog) }, { name: 'bin/', type: 'directory', mode: 0o755 }]);
  const tar2 = await makeTar([{ name: 'two', body: '2' }]);
  const layer = (t: Buffer) => ({ diffId: `sha256:${createHash('sha256').update(t).digest('hex')}`, mediaType: 'application/vnd.oci.image.layer.v1.tar', open: () => Readable.from([t]) });
  for (const mode of ['overlay', 'copy'] as const) {
    const images = join(work, `snap-${mode}`, 'images');
    const snap = new Snapshotter(images, { mode });
    const one = await snap.unpack([layer(tar)]);
    const two = await snap.unpack([layer(tar), layer(tar2)]);
    const cases: { key: string; chain: string; readonly?: boolean; nosuid?: boolean }[] = [
      { key: 'rw', chain: two }, { key: 'ro1', chain: one, readonly: true }, { key: 'ro2', chain: two, readonly: true },
      { key: 'runc', chain: two, nosuid: false },
    ];
    try {
      for (const c of cases) {
        const p = await snap.prepare(c.key, c.chain, { readonly: c.readonly, nosuid: c.nosuid });
        assert.equal(octal(modeOf(join(images, 'mounts', c.key))), '0700', `${mode} ${c.key}: its mount dir is root-only`);
        const opts = mountOptions(p.rootfs);
        if (mode === 'copy' && !c.readonly) {
          assert.equal(opts, undefined, 'a copy is a plain directory');
        } else if (c.nosuid === false) {
          assert.ok(opts && !opts.includes('nosuid') && !opts.includes('nodev'), `${mode} ${c.key}: ${opts}`);
        } else {
          assert.ok(opts && opts.includes('nosuid') && opts.includes('nodev'), `${mode} ${c.key}: nosuid,nodev on the host: ${opts}`);
        }
        if (c.readonly) assert.throws(() => writeFileSync(join(p.rootfs, 'x'), 'x'), /EROFS/, `${mode} ${c.key} is read-only`);
      }
      for (const d of [images, join(images, 'snapshots'), join(images, 'mounts'), ...snap.list().map((c) => join(images, 'snapshots', c.slice(7)))]) {
        assert.equal(octal(modeOf(d)), '0700', `${mode}: ${d} is root-only`);
      }
      const layerDir = join(images, 'snapshots', one.slice(7), mode === 'overlay' ? 'fs' : 'full');
      assertNoBreach(join(work, `snap-${mode}`), [
        () => nobodyRuns(join(images, 'mounts', 'rw', 'rootfs', 'euid'), `${mode}: the rootfs`),
        () => nobodyRuns(join(images, 'mounts', 'runc', 'rootfs', 'euid'), `${mode}: a rootfs mounted without nosuid`),
        () => nobodyRuns(join(layerDir, 'euid'), `${mode}: the layer's snapshot`),
      ]);
    } finally {
      for (const c of cases) await snap.remove(c.key);
    }
  }
});

test('pier-runtime clears nosuid,nodev on its own bind of the rootfs only when the spec asks, keeping ro', { skip, timeout: 120_000 }, () => {
  const prog = euidProgram(join(work, 'rt-bin'));
  const rtRoot = join(work, 'rt-root');
  let n = 0;
  const runIn = (hostFlags: string, annotate: boolean, script: string): string => {
    const bundle = makeBundle({ ...baseSpec(['sh', '-c', script]), annotations: annotate ? { [ROOTFS_SUID_DEV_ANNOTATION]: 'true' } : {} }, { writable: true });
    const rootfs = join(bundle, 'rootfs');
    try {
      execFileSync('cp', [prog, join(rootfs, 'euid')]);
      chmodSync(join(rootfs, 'euid'), 0o4755);
      const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
      spec.process.user = { uid: 1000, gid: 1000 };
      spec.process.noNewPrivileges = false;
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
      // The host's mount of the rootfs, as the snapshotter makes it.
      execFileSync('mount', ['--bind', rootfs, rootfs]);
      try {
        execFileSync('mount', ['-o', `remount,bind,${hostFlags}`, rootfs]);
        const r = pr(rtRoot, ['run', '--bundle', bundle, `perms-${process.pid}-${++n}`], { timeout: 60_000 });
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(mountOptions(rootfs)!.filter((o) => o === 'nosuid' || o === 'nodev' || o === 'ro'), hostFlags.split(',').filter((o) => o !== 'rw'),
          'the host mount keeps its flags');
        return r.stdout;
      } finally {
        execFileSync('umount', ['-l', rootfs]);
      }
    } finally {
      rmSync(bundle, { recursive: true, force: true });
    }
  };
  const rootLine = "awk '$5 == \"/\" { print $6 }' /proc/self/mountinfo";
  let out = runIn('nosuid,nodev', true, `/euid; ${rootLine}`);
  assert.match(out, /^euid=0$/m, out);
  assert.doesNotMatch(out, /nosuid|nodev/, `the container's / is suid,dev: ${out}`);
  out = runIn('nosuid,nodev', false, `/euid; ${rootLine}`);
  assert.match(out, /^euid=1000$/m, `without the annotation the bind keeps the host's nosuid, as runc's: ${out}`);
  assert.match(out, /nosuid/);
  out = runIn('ro,nosuid,nodev', true, `/euid; touch /x 2>&1; ${rootLine}`);
  assert.match(out, /^euid=0$/m, out);
  assert.match(out, /Read-only file system/, `a read-only host mount stays read-only inside: ${out}`);
  assert.match(out, /^ro,/m, out);
});

test('a volume and the rootfs stay usable to a non-root container user', { skip, timeout: 120_000 }, () => {
  const e = testEngine();
  engines.push(e);
  e.ok(['run', '--rm', '-v', 'permvol:/data', 'busybox', 'sh', '-c', 'echo hello > /data/f && chmod 1777 /data']);
  const out = e.ok(['run', '--rm', '-u', '1000:1000', '-v', 'permvol:/data', '-v', '/data2', 'busybox', 'sh', '-c',
    'cat /data/f && echo mine > /data/g && cat /data/g && ls /bin/busybox && id -u && touch /data2/x 2>/dev/null; echo rc=$?']);
  assert.match(out, /^hello$/m, 'reads the volume');
  assert.match(out, /^mine$/m, 'writes the volume');
  assert.match(out, /^\/bin\/busybox$/m, 'sees its rootfs');
  assert.match(out, /^1000$/m);
  // A fresh anonymous volume is root's 0755, as docker's: uid 1000 may not write it (docker's rule, not a lockout).
  assert.match(out, /^rc=1$/m);
  const vol = join(e.root, 'volumes', 'permvol');
  assert.equal(octal(modeOf(join(e.root, 'volumes'))), '0700');
  assert.equal(octal(modeOf(vol)), '0700');
  assert.equal(octal(modeOf(join(vol, '_data'))), '1777', '_data keeps what the container made it');
  assertNoBreach(e.root, [() => nobodyLists(join(vol, '_data'), 'a volume\'s data'), () => nobodyReads(join(vol, '_data', 'f'), 'a volume\'s file')]);
});

test('--runtime runc: set-id works inside, its rootfs is mounted only in runc\'s own mount namespace, the host is kept out by the parents', { skip: skip || (!existsSync(RUNC) && 'needs runc'), timeout: 120_000 }, () => {
  const e = testEngine();
  engines.push(e);
  const prog = euidProgram(join(work, 'runc-bin'));
  const id = e.ok(['run', '-d', '--runtime', RUNC, '--name', 'rc', 'busybox', 'sleep', '1000']).trim();
  e.ok(['cp', prog, 'rc:/planted']);
  e.ok(['exec', 'rc', 'chmod', '4755', '/planted']);
  assert.equal(e.ok(['exec', '-u', '1000', 'rc', '/planted']).trim(), 'euid=0', 'set-id works in a runc container');
  const mnt = join(e.root, 'images', 'mounts', `ctr-${id}`);
  // the shim mounted it in a private namespace runc started in: nothing of it on the host
  assert.equal(mountOptions(join(mnt, 'rootfs')), undefined, 'runc\'s rootfs is not mounted on the host');
  assert.deepEqual(readdirSync(join(mnt, 'rootfs')), []);
  assert.equal(octal(modeOf(mnt)), '0700');
  assertNoBreach(e.root, [
    () => nobodyRuns(join(mnt, 'upper', 'planted'), 'runc container\'s upper dir'),
  ]);
  e.ok(['rm', '-f', 'rc']);
});

test('an install with 0755 state dirs is tightened by ImageService and by pierd start', { skip, timeout: 120_000 }, () => {
  const e = testEngine();
  engines.push(e);
  const images = join(e.root, 'images');
  // What an older pier left: every dir 0755, a prepared mount among them.
  const oldMount = join(images, 'mounts', 'ctr-old');
  for (const d of [join(images, 'snapshots'), join(oldMount, 'rootfs'), join(oldMount, 'upper'), join(e.root, 'containers'), join(e.root, 'volumes'),
    join(e.root, 'networks'), join(e.root, 'build-runtime'), join(e.root, 'registry'), join(e.run, 'shims'), join(e.run, 'runtime')]) {
    mkdirSync(d, { recursive: true });
  }
  const loose = [e.root, images, join(images, 'blobs'), join(images, 'snapshots'), join(images, 'mounts'), oldMount, join(oldMount, 'rootfs'),
    join(oldMount, 'upper'), join(e.root, 'containers'), join(e.root, 'volumes'), join(e.root, 'networks'), join(e.root, 'build-runtime'),
    join(e.root, 'registry'), e.run, join(e.run, 'shims'), join(e.run, 'runtime')];
  for (const d of loose) chmodSync(d, 0o755);
  try {
    // The image layer (no daemon): `pier image ls` constructs an ImageService.
    e.ok(['image', 'ls']);
    for (const d of [e.root, images, join(images, 'snapshots'), join(images, 'mounts'), oldMount, join(e.root, 'build-runtime'), join(e.root, 'registry')]) {
      assert.equal(octal(modeOf(d)), '0700', `${d} tightened by ImageService`);
    }
    // The container's / is the upper dir: its mode is the image's business, not tightened.
    assert.equal(octal(modeOf(join(oldMount, 'upper'))), '0755');

    // pierd's start tightens the engine's trees.
    e.ok(['ps']);
    for (const d of [join(e.root, 'containers'), join(e.root, 'volumes'), join(e.root, 'networks'), e.run, join(e.run, 'shims'), join(e.run, 'runtime')]) {
      assert.equal(octal(modeOf(d)), '0700', `${d} tightened by pierd`);
    }
  } finally {
    rmSync(oldMount, { recursive: true, force: true });
  }
});

test('pier registry serve makes its storage dir 0700 and tightens an old one; what a push makes below is 0700', { skip, timeout: 60_000 }, async () => {
  for (const existed of [false, true]) {
    const storage = join(work, `registry-${existed}`);
    if (existed) { mkdirSync(storage, { recursive: true }); chmodSync(storage, 0o755); }
    const reg = await startRegistry({ listen: '127.0.0.1:0', storage });
    try {
      assert.equal(octal(modeOf(storage)), '0700', `storage ${existed ? 'tightened' : 'made'} root-only`);
      const body = Buffer.from('perms');
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      const res = await fetch(`${reg.url}/v2/perms/blob/blobs/uploads/?digest=${digest}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(res.status, 201, await res.text());
      assertNoBreach(storage, [
        () => nobodyLists(join(storage, 'repositories'), 'registry repositories'),
        () => nobodyLists(join(storage, 'blobs'), 'registry blobs'),
      ]);
    } finally {
      await reg.close();
    }
  }
});
