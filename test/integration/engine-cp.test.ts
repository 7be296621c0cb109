/**
 * `pier cp` against a hostile container (issue 10, finding 1; the CVE-2018-15664 class): a process
 * in the container swaps a directory and a symlink to a host-looking path with
 * renameat2(RENAME_EXCHANGE) in a loop while pierd copies out of and into that directory. Every copy
 * must stay inside the container: the host's secret is never read, no file appears in the host
 * directory, and no host file's mode changes. Also docker's cp semantics that depend on resolving
 * inside the container: a symlink is copied as a link, -L follows it, volumes and binds are seen at
 * their destinations.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tarFromEntries } from '../../src/image/layer/index.ts';
import { testEngine, type TestEngine } from '../helpers/engine.ts';

const ROUNDS = Number(process.env.PIER_CP_RACE_ROUNDS ?? 400);

let e: TestEngine;
let work: string;
/** A host directory the container's symlink names (the same path inside the container is harmless). */
let hostDir: string;

/** One request to the engine's API socket; the body of the answer as a Buffer. */
function api(method: string, path: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(e.run, 'pier.sock'), method, path: `/v1${path}`, headers: body ? { 'content-length': body.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(() => {
  e = testEngine();
  work = mkdtempSync(join(tmpdir(), 'pier-cp-race-'));
  hostDir = mkdtempSync(join(tmpdir(), 'pier-cp-host-'));
  writeFileSync(join(hostDir, 'secret'), 'HOST-SECRET\n');
  writeFileSync(join(hostDir, 'target'), 'host file\n');
  chmodSync(join(hostDir, 'target'), 0o600);
  // The swapper: exchange two names as fast as the kernel lets us.
  writeFileSync(join(work, 'swap.c'), `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
int main(int argc, char **argv) {
  if (argc != 3) return 2;
  for (;;) renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
}
`);
  mkdirSync(join(work, 'tools'));
  execFileSync('gcc', ['-static', '-O2', '-o', join(work, 'tools', 'swap'), join(work, 'swap.c')]);
});

after(async () => {
  await e.close();
  rmSync(work, { recursive: true, force: true });
  rmSync(hostDir, { recursive: true, force: true });
});

/**
 * A running container whose /w/d flips between a real directory (holding `secret` = "inside") and a
 * symlink to `hostDir` (inside the container that path holds `secret` = "container-tmp").
 */
function racer(name: string): void {
  e.ok(['run', '-d', '--name', name, '-v', `${join(work, 'tools')}:/tools:ro`, 'busybox', 'sh', '-c',
    `mkdir -p /w/d ${hostDir} && echo inside > /w/d/secret && echo container-tmp > ${hostDir}/secret && ` +
    `echo container > ${hostDir}/target && ln -s ${hostDir} /w/x && exec /tools/swap /w/d /w/x`]);
  // Wait until the swapper runs.
  for (let i = 0; i < 100; i++) {
    if (e.pier(['exec', name, 'sh', '-c', 'test -e /w/d/secret && pidof swap']).status === 0) return;
    execFileSync('sleep', ['0.05']);
  }
  throw new Error('the swapper did not start');
}

describe('pier cp against a container racing symlink swaps', () => {
  test(`copy out (${ROUNDS} rounds) never reads the host`, async () => {
    racer('out');
    const seen = new Map<string, number>();
    for (let i = 0; i < ROUNDS; i++) {
      const r = await api('GET', `/containers/out/archive?path=${encodeURIComponent('/w/d/secret')}`);
      const text = r.status === 200 ? r.body.toString('latin1') : `status ${r.status}`;
      assert.ok(!text.includes('HOST-SECRET'), `round ${i}: the host's file came out of the container`);
      const what = text.includes('container-tmp') ? 'container-tmp' : text.includes('inside') ? 'inside' : `other (${r.status})`;
      seen.set(what, (seen.get(what) ?? 0) + 1);
    }
    // The race was real: both sides of the swap were seen.
    assert.ok((seen.get('inside') ?? 0) > 0 && (seen.get('container-tmp') ?? 0) > 0, JSON.stringify([...seen]));
    e.ok(['rm', '-f', 'out']);
  });

  test(`copy in (${ROUNDS} rounds) never writes or chmods the host`, async () => {
    racer('in');
    const before = readdirSync(hostDir).sort();
    const modeBefore = statSync(join(hostDir, 'target')).mode;
    const failures: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // A new file, and one named like the host's file with mode 0777 (the chmod the swap would redirect).
      const tar = tarFromEntries([
        { header: { name: `dropped-${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 }, data: Buffer.from('x') },
        { header: { name: 'target', type: 'file', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0 }, data: Buffer.from('y') },
      ]);
      const r = await api('PUT', `/containers/in/archive?path=${encodeURIComponent('/w/d')}`, tar);
      if (r.status !== 200) failures.push(`round ${i}: ${r.status} ${r.body}`);
    }
    assert.deepEqual(readdirSync(hostDir).sort(), before, 'files appeared in the host directory');
    assert.equal(statSync(join(hostDir, 'target')).mode, modeBefore, "the host file's mode changed");
    assert.equal(readFileSync(join(hostDir, 'target'), 'utf8'), 'host file\n');
    // A swap may make a copy find no directory (404) or lose a race it reports (400), never crash.
    assert.deepEqual(failures.filter((f) => / 500 /.test(f)), []);
    // What was copied went inside the container, on one side of the swap or the other.
    const inside = e.ok(['exec', 'in', 'sh', '-c', `ls /w/d /w/x ${hostDir} | grep -c dropped- || true`]);
    assert.ok(Number(inside) > 0, `copied files are in the container (${inside.trim()})`);
    e.ok(['rm', '-f', 'in']);
  });
});

describe('pier cp resolves inside the container', () => {
  test('a symlink is copied as a link; -L follows it; an absolute link leads into the container, not the host', () => {
    const vol = mkdtempSync(join(tmpdir(), 'pier-cp-bind-'));
    writeFileSync(join(vol, 'bound'), 'from the bind\n');
    e.ok(['run', '-d', '--name', 'links', '-v', `${vol}:/data`, 'busybox', 'sh', '-c',
      `echo container-passwd > /etc/pw && ln -s /etc/pw /link && ln -s /data/bound /tobind && ln -s / /root-link && sleep 1000`]);
    for (let i = 0; i < 100 && e.pier(['exec', 'links', 'test', '-L', '/root-link']).status !== 0; i++) execFileSync('sleep', ['0.05']);
    const out = mkdtempSync(join(tmpdir(), 'pier-cp-out-'));
    try {
      e.ok(['cp', 'links:/link', join(out, 'l')]);
      assert.ok(lstatSync(join(out, 'l')).isSymbolicLink(), 'the link itself');
      assert.equal(readlinkSync(join(out, 'l')), '/etc/pw');
      e.ok(['cp', '-L', 'links:/link', join(out, 'f')]);
      assert.equal(readFileSync(join(out, 'f'), 'utf8'), 'container-passwd\n');
      // Through a symlink into a bind mount: the bind's file, as the container sees it.
      e.ok(['cp', 'links:/tobind/', join(out, 'b')]).toString();
      assert.equal(readFileSync(join(out, 'b'), 'utf8'), 'from the bind\n');
      // /root-link/etc/pw is the container's /etc/pw, never the host's /etc.
      e.ok(['cp', 'links:/root-link/etc/pw', join(out, 'p')]);
      assert.equal(readFileSync(join(out, 'p'), 'utf8'), 'container-passwd\n');
      // Copying in through the absolute link lands in the container's /etc.
      writeFileSync(join(out, 'in.txt'), 'copied in\n');
      e.ok(['cp', join(out, 'in.txt'), 'links:/root-link/etc/']);
      assert.equal(e.ok(['exec', 'links', 'cat', '/etc/in.txt']), 'copied in\n');
      assert.equal(existsSync('/etc/in.txt'), false);
      // Into the bind: the host directory behind it gets the file.
      e.ok(['cp', join(out, 'in.txt'), 'links:/data/']);
      assert.equal(readFileSync(join(vol, 'in.txt'), 'utf8'), 'copied in\n');
      // A path that is not there: one line, non-zero.
      const miss = e.pier(['cp', 'links:/nope/x', join(out, 'x')]);
      assert.notEqual(miss.status, 0);
      assert.match(miss.stderr, /no such file or directory in container: \/nope\/x/);
    } finally {
      e.ok(['rm', '-f', 'links']);
      rmSync(out, { recursive: true, force: true });
      rmSync(vol, { recursive: true, force: true });
    }
  });

  test("a new volume's copy-up of image content follows the image's links inside it", () => {
    const ctx = mkdtempSync(join(tmpdir(), 'pier-cp-ctx-'));
    try {
      // An image whose /vol is a symlink to / : the copy-up must copy the image's root, not the host's.
      writeFileSync(join(ctx, 'Containerfile'), 'FROM busybox\nRUN mkdir /real && echo image > /real/f && ln -s /real /vol\n');
      e.ok(['build', '-t', 'cpup:1', ctx]);
      e.ok(['run', '--name', 'cpup', '-v', '/vol', 'cpup:1', 'true']);
      const vol = e.inspect('cpup').mounts.find((m: { destination: string }) => m.destination === '/vol');
      const mountpoint = JSON.parse(e.ok(['volume', 'inspect', vol.source]))[0].mountpoint;
      assert.deepEqual(readdirSync(mountpoint), ['f']);
      assert.equal(readFileSync(join(mountpoint, 'f'), 'utf8'), 'image\n');
    } finally {
      e.pier(['rm', '-f', '-v', 'cpup']);
      rmSync(ctx, { recursive: true, force: true });
    }
  });
});
