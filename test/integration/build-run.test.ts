/**
 * pier build end to end on busybox: a multi-stage build whose result runs, reproducible digests
 * across fresh roots, a failing RUN that leaves nothing behind, and errors naming file:line.
 * Needs root (RUN containers, overlay mounts) and the native helper (node scripts/build.mjs).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { join } from 'node:path';
import { ImageService } from '../../src/image/index.ts';
import { Snapshotter } from '../../src/image/snapshot/index.ts';
import { imageSpec, writeBundle } from '../../src/image/bundle.ts';
import { build, type BuildOptions } from '../../src/image/build/index.ts';
import { Runtime } from '../../src/runtime/index.ts';
import { cleanup, tempDir } from '../helpers/image.ts';

const skip = process.getuid?.() === 0 && existsSync('/bin/busybox') ? false : 'needs root and /bin/busybox (busybox-static)';
let work = '';

before(() => { work = tempDir('pier-build-run-'); });
after(() => cleanup(work));

async function freshRoot(name: string): Promise<ImageService> {
  const svc = new ImageService({ root: join(work, name) });
  await svc.bootstrap('busybox');
  return svc;
}

function context(name: string, files: Record<string, string>): string {
  const dir = join(work, name);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), text);
  }
  return dir;
}

/** Build quietly, RUN output into a file; returns the result and the progress lines. */
async function quietBuild(svc: ImageService, opts: BuildOptions): Promise<{ id: string; lines: string[]; cached: boolean[]; runOut: string }> {
  const lines: string[] = [];
  const outFile = join(work, `run-out-${Math.random().toString(36).slice(2)}`);
  const fd = openSync(outFile, 'w');
  try {
    const r = await build(svc, { ...opts, progress: (l) => lines.push(l), runOutput: [fd, fd] });
    return { id: r.id, lines, cached: r.steps.map((s) => s.cached), runOut: readFileSync(outFile, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

/** Run an image's default command with the runtime library; its stdout. */
async function runImage(svc: ImageService, ref: string, id: string): Promise<string> {
  const img = await svc.resolve(ref);
  const snap = new Snapshotter(svc.content.root);
  const chainId = await snap.unpack(img.manifest.layers.map((l, i) => ({
    diffId: img.config.rootfs.diff_ids[i], mediaType: l.mediaType, open: () => svc.content.readStream(l.digest),
  })));
  const { rootfs } = await snap.prepare(id, chainId);
  const out = join(work, `${id}.out`);
  const fd = openSync(out, 'w');
  try {
    const bundle = join(work, 'bundles', id);
    const spec = imageSpec(img.config, { rootfs });
    spec.process!.terminal = false;
    writeBundle(bundle, spec);
    const status = await new Runtime({ root: join(work, 'rt-state') }).run({ id, bundle, stdio: ['ignore', fd, 2] });
    assert.equal(status, 0);
    return readFileSync(out, 'utf8');
  } finally {
    closeSync(fd);
    await snap.remove(id);
  }
}

const MULTI = `# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM \${BASE} AS builder
ARG GREETING=hello
RUN echo "$GREETING from stage one" > /made.txt && \\
    mkdir -p /out && cp /made.txt /out/
COPY note.txt /out/

FROM busybox
WORKDIR /app
COPY --from=0 /out/ ./
ENV WHO="the second stage"
CMD ["sh", "-c", "cat /app/made.txt /app/note.txt; echo from $WHO"]
`;

test('a multi-stage build runs, and its result runs', { skip }, async () => {
  const svc = await freshRoot('multi');
  const ctx = context('ctx-multi', { Containerfile: MULTI, 'note.txt': 'a note\n' });
  const r = await quietBuild(svc, { context: ctx, tags: ['multi:1'], buildArgs: { GREETING: 'hi' } });
  assert.match(r.lines[0], /^STEP 1\/9: FROM \$\{BASE\} AS builder$/);
  assert.ok(r.cached.every((c) => !c), 'first build: no cache hits');
  assert.equal((await svc.resolve('multi:1')).manifestDigest, r.id);
  assert.equal(await runImage(svc, 'multi:1', 'multi-run'), 'hi from stage one\na note\nfrom the second stage\n');
  const img = await svc.resolve('multi:1');
  // busybox + one COPY layer; RUN-only files of stage one stay there.
  assert.equal(img.manifest.layers.length, 2);
  assert.equal(img.config.config?.WorkingDir, '/app');
  assert.ok(img.config.config?.Env?.includes('WHO=the second stage'));
});

test('two clean builds with the same SOURCE_DATE_EPOCH give the same manifest digest', { skip }, async () => {
  const ctx = context('ctx-repro', { Containerfile: MULTI, 'note.txt': 'same\n' });
  const a = await quietBuild(await freshRoot('repro-a'), { context: ctx, tags: ['r:1'], sourceDateEpoch: 1700000000 });
  // Different mtimes on the source must not matter once clamped.
  writeFileSync(join(ctx, 'note.txt'), 'same\n');
  const b = await quietBuild(await freshRoot('repro-b'), { context: ctx, tags: ['r:1'], sourceDateEpoch: 1700000000 });
  assert.equal(a.id, b.id);
  const c = await quietBuild(await freshRoot('repro-c'), { context: ctx, tags: ['r:1'], sourceDateEpoch: 1700000001 });
  assert.notEqual(a.id, c.id, 'another epoch, another digest');
  const img = await new ImageService({ root: join(work, 'repro-a') }).resolve('r:1');
  assert.equal(img.config.created, new Date(1700000000 * 1000).toISOString());
});

function leftovers(root: string): string[] {
  const out: string[] = [];
  for (const d of ['images/mounts', 'images/build-tmp', 'build-runtime']) {
    const p = join(root, d);
    if (existsSync(p)) out.push(...readdirSync(p).filter((n) => !n.startsWith('.')).map((n) => `${d}/${n}`));
  }
  out.push(...readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(root)));
  const cg = '/sys/fs/cgroup';
  const walk = (dir: string, depth: number) => {
    if (depth > 4) return;
    let names: string[] = [];
    try { names = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name); } catch { return; }
    for (const n of names) {
      if (n.includes('pier-build-')) out.push(join(dir, n));
      walk(join(dir, n), depth + 1);
    }
  };
  walk(cg, 0);
  return out;
}

test('a failing RUN reports file:line and leaves no container, mount or temp dir', { skip }, async () => {
  const svc = await freshRoot('fail');
  const ctx = context('ctx-fail', { Containerfile: 'FROM busybox\nENV A=1\n\nRUN true\nRUN echo about to fail; exit 3\nCMD ["true"]\n' });
  await assert.rejects(quietBuild(svc, { context: ctx, tags: ['fail:1'] }), (err: Error) => {
    assert.equal(err.message, 'Containerfile:5: RUN: exit status 3');
    return true;
  });
  assert.deepEqual(leftovers(svc.root), []);
  assert.throws(() => svc.refsFor('fail:1'), /not found/);
});

test('errors name the file, line and instruction', { skip }, async () => {
  const svc = await freshRoot('errors');
  const cases: [string, RegExp][] = [
    ['FROM nosuch\n', /^Containerfile:1: FROM: image "nosuch:latest" not found locally \(pier has no registry access yet; use pier image bootstrap\/import\)$/],
    ['FROM busybox\nCOPY missing.txt /x\n', /^Containerfile:2: COPY: "missing.txt": no such file or directory$/],
    ['FROM busybox\nRUN true\nBOGUS x\n', /^Containerfile:3: unknown instruction "BOGUS"$/],
    ['FROM busybox\nADD https://example.com/x /x\n', /^Containerfile:2: ADD: "https:\/\/example.com\/x": remote URLs are not supported/],
    ['FROM busybox\nCOPY --from=nostage /x /x\n', /^Containerfile:2: COPY: --from=nostage: no such stage, and image "nostage:latest" not found locally/],
    ['FROM busybox\nENV A=${B:?must be set}\n', /^Containerfile:2: ENV: B: must be set$/],
    ['FROM busybox\nEXPOSE 99999\n', /^Containerfile:2: EXPOSE: invalid port range "99999"/],
  ];
  for (const [i, [text, re]] of cases.entries()) {
    const ctx = context(`ctx-err-${i}`, { Containerfile: text });
    await assert.rejects(quietBuild(svc, { context: ctx }), (err: Error) => { assert.match(err.message, re); return true; });
  }
  assert.deepEqual(leftovers(svc.root), []);
});

/** The entries of an image's last layer. */
async function lastLayer(svc: ImageService, ref: string): Promise<Map<string, { type: string; linkname?: string; body: string }>> {
  const img = await svc.resolve(ref);
  return layerAt(svc, img.manifest.layers[img.manifest.layers.length - 1].digest);
}

/** A context with links out of it: evil -> /etc, evil2 -> ../../.., link-to-root -> /, sub/pw -> /etc/passwd. */
function evilContext(name: string, containerfile: string): string {
  const dir = context(name, { Containerfile: containerfile, f: 'context file\n', 'sub/x': 'x\n' });
  symlinkSync('/etc', join(dir, 'evil'));
  symlinkSync('../../..', join(dir, 'evil2'));
  symlinkSync('/', join(dir, 'link-to-root'));
  symlinkSync('/etc/passwd', join(dir, 'sub', 'pw'));
  return dir;
}

const HOST_PASSWD = readFileSync('/etc/passwd', 'utf8');
/** What `COPY <the context root> /x` gives: the context's own entries, links as links. */
const CONTEXT_ENTRIES = ['x', 'x/Containerfile', 'x/evil', 'x/evil2', 'x/f', 'x/link-to-root', 'x/sub', 'x/sub/pw', 'x/sub/x'];

function assertNoHostFile(entries: Map<string, { type: string; body: string }>): void {
  for (const [name, e] of entries) {
    assert.ok(!/(^|\/)(shadow|gshadow|hostname|debian_version|os-release)$/.test(name), `host file ${name} in the layer`);
    if (e.type === 'file') assert.ok(e.body !== HOST_PASSWD, `${name} holds the host's /etc/passwd`);
  }
}

test('a context symlink out of the context is never followed out of it: COPY refuses in one line, or copies inside the context', { skip }, async () => {
  const svc = await freshRoot('evil-ctx');
  for (const [i, copy] of ['COPY evil /x', 'COPY evil/ /x', 'COPY evil/passwd /x', 'COPY evil/* /x/'].entries()) {
    const ctx = evilContext(`ctx-evil-${i}`, `FROM busybox\n${copy}\n`);
    await assert.rejects(quietBuild(svc, { context: ctx }), (err: Error) => {
      assert.match(err.message, /^Containerfile:2: COPY: "evil[^"]*": a symlink leading out of the build context \(symlinks are followed only inside it, and \/etc is not there\)$/);
      return true;
    }, copy);
  }
  // A link to "/" or above the context is the context itself, as docker has it (not an ENOENT).
  for (const [i, src] of ['link-to-root', 'evil2', '.'].entries()) {
    const ctx = evilContext(`ctx-root-${i}`, `FROM busybox\nCOPY ${src} /x\n`);
    await quietBuild(svc, { context: ctx, tags: [`root${i}:1`] });
    const entries = await lastLayer(svc, `root${i}:1`);
    assert.deepEqual([...entries.keys()].sort(), CONTEXT_ENTRIES, `COPY ${src} /x`);
    assert.equal(entries.get('x/evil')?.linkname, '/etc', 'a link inside the context is copied as a link');
    assert.equal(entries.get('x/sub/pw')?.linkname, '/etc/passwd');
    assertNoHostFile(entries);
  }
  assert.deepEqual(leftovers(svc.root), []);
});

test('a link one COPY source puts in the tree is not followed by the next source onto the host', { skip }, async () => {
  const svc = await freshRoot('evil-tree');
  const victim = join(work, 'victim-tree');
  mkdirSync(victim);
  writeFileSync(join(victim, 'keep'), 'original\n');
  const ctx = context('ctx-tree', { Containerfile: 'FROM busybox\nCOPY a/ b/ /x/\nADD a/ c.tar /y/\n', 'b/sub/pwned': 'pwned\n', 'b/sub/keep': 'new\n' });
  mkdirSync(join(ctx, 'a'));
  symlinkSync(victim, join(ctx, 'a', 'sub'));
  const t = join(work, 'tar-src', 'sub');
  mkdirSync(t, { recursive: true });
  writeFileSync(join(t, 'from-tar'), 'pwned by tar\n');
  execFileSync('tar', ['-C', join(work, 'tar-src'), '-cf', join(ctx, 'c.tar'), 'sub/from-tar']);
  await quietBuild(svc, { context: ctx, tags: ['tree:1'] });
  assert.deepEqual(readdirSync(victim), ['keep'], 'a file was written on the host through a link in the COPY tree');
  assert.equal(readFileSync(join(victim, 'keep'), 'utf8'), 'original\n');
  const img = await svc.resolve('tree:1');
  const copy = await layerAt(svc, img.manifest.layers[img.manifest.layers.length - 2].digest);
  assert.equal(copy.get('x/sub')?.type, 'directory');
  assert.equal(copy.get('x/sub/pwned')?.body, 'pwned\n');
  const add = await lastLayer(svc, 'tree:1');
  assert.equal(add.get('y/sub')?.type, 'directory');
  assert.equal(add.get('y/sub/from-tar')?.body, 'pwned by tar\n');
  assert.deepEqual(leftovers(svc.root), []);
});

test('COPY --from resolves a stage\'s symlinks inside that stage\'s rootfs, never on the host', { skip }, async () => {
  const svc = await freshRoot('evil-from');
  const victim = join(work, 'victim-from');
  mkdirSync(victim);
  const ctx = context('ctx-from', {
    Containerfile: [
      'FROM busybox',
      `RUN ln -s /etc /out && mkdir -p /a /b/sub && ln -s ${victim} /a/sub && echo pwned > /b/sub/pwned`,
      'FROM busybox',
      'COPY --from=0 /out /y',
      'COPY --from=0 /out/* /z/',
      'COPY --from=0 /a/ /b/ /w/',
      '',
    ].join('\n'),
  });
  await quietBuild(svc, { context: ctx, tags: ['from:1'] });
  assert.deepEqual(readdirSync(victim), [], 'a stage\'s link led a COPY onto the host');
  const img = await svc.resolve('from:1');
  const n = img.manifest.layers.length;
  const stageEtc = (await runImageFiles(svc)).sort();
  for (const [i, dir] of [[n - 3, 'y'], [n - 2, 'z']] as const) {
    const entries = await layerAt(svc, img.manifest.layers[i].digest);
    assertNoHostFile(entries);
    // Exactly the stage's /etc (busybox's), not the host's.
    assert.deepEqual([...entries.keys()].filter((k) => k !== dir).map((k) => k.slice(dir.length + 1)).sort(), stageEtc, `/${dir}`);
    assert.notEqual(entries.get(`${dir}/passwd`)?.body, HOST_PASSWD);
  }
  const w = await layerAt(svc, img.manifest.layers[n - 1].digest);
  assert.equal(w.get('w/sub')?.type, 'directory');
  assert.equal(w.get('w/sub/pwned')?.body, 'pwned\n');
  assert.deepEqual(leftovers(svc.root), []);
});

test('a WORKDIR through an image symlink is made inside the image, not on the host', { skip }, async () => {
  const svc = await freshRoot('evil-workdir');
  const victim = join(work, 'victim-workdir');
  mkdirSync(victim);
  const ctx = context('ctx-workdir', { Containerfile: `FROM busybox\nRUN ln -s ${victim} /w\nWORKDIR /w/made\nRUN pwd > /where\n` });
  await quietBuild(svc, { context: ctx, tags: ['wd:1'] });
  assert.deepEqual(readdirSync(victim), [], 'WORKDIR made a directory on the host');
  const entries = await lastLayer(svc, 'wd:1');
  assert.equal(entries.get('where')?.body, `${victim}/made\n`);
  assert.equal(entries.get(`${victim.slice(1)}/made`)?.type, 'directory', 'the directory is made in the image, where the link leads inside it');
});

/** Entries of one layer blob. */
async function layerAt(svc: ImageService, digest: string): Promise<Map<string, { type: string; linkname?: string; body: string }>> {
  const out = new Map<string, { type: string; linkname?: string; body: string }>();
  const ex = extract();
  ex.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => { chunks.push(c as Buffer); });
    stream.on('end', () => { out.set(h.name.replace(/\/$/, ''), { type: h.type ?? 'file', ...(h.linkname ? { linkname: h.linkname } : {}), body: Buffer.concat(chunks).toString('utf8') }); next(); });
  });
  const done = new Promise<void>((resolve, reject) => { ex.on('finish', resolve); ex.on('error', reject); });
  ex.end(gunzipSync(await svc.content.readBytes(digest)));
  await done;
  return out;
}

/** The names in busybox's /etc, as bootstrapped. */
async function runImageFiles(svc: ImageService): Promise<string[]> {
  const img = await svc.resolve('busybox');
  const names: string[] = [];
  for (const l of img.manifest.layers) {
    for (const k of (await layerAt(svc, l.digest)).keys()) {
      const m = /^(?:\.\/)?etc\/(.+)$/.exec(k);
      if (m) names.push(m[1]);
    }
  }
  return names;
}
