/**
 * Crash test of the registry server: `pier registry serve` (the built CLI, a child process) takes 20
 * concurrent chunked pushes and is killed with SIGKILL part-way; a new server on the same storage
 * must serve only blobs whose bytes hash to their digest, the interrupted pushes must complete when
 * retried (resuming their sessions, or afresh), and everything then pulls and verifies. A checker
 * GETs blobs throughout, before and after the kill; no answer may carry bytes of another digest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { RegistryClient } from '../../src/registry/index.ts';
import { cleanup, tempDir } from '../helpers/image.ts';

const TOP = join(import.meta.dirname, '..', '..');
const PIER = join(TOP, 'bin', 'pier');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const PUSHES = 20;
const CHUNK = 1 << 20;

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Blob { digest: string; data: Buffer; location?: string; done: boolean }
interface Push { repo: string; blobs: Blob[]; manifest: Buffer; tagged: boolean }

async function serve(storage: string, listen: string): Promise<{ proc: ChildProcess; host: string }> {
  const proc = spawn(PIER, ['registry', 'serve', '--listen', listen, '--storage', storage], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const host = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on http:\/\/(\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.once('exit', (code) => reject(new Error(`pier registry serve exited ${code}: ${err}`)));
  });
  return { proc, host };
}

async function kill9(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGKILL');
  await exited;
}

/** GET a blob over a fresh connection: status and, on 200, the digest of the bytes received. */
function getBlob(host: string, repo: string, digest: string): Promise<{ status: number; got?: string; complete: boolean }> {
  return new Promise((resolve) => {
    const req = request(`http://${host}/v2/${repo}/blobs/${digest}`, { agent: false }, (res) => {
      const h = createHash('sha256');
      let n = 0;
      res.on('data', (c: Buffer) => { h.update(c); n += c.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, got: res.statusCode === 200 ? `sha256:${h.digest('hex')}` : undefined, complete: n === Number(res.headers['content-length']) }));
      res.on('error', () => resolve({ status: -1, complete: false }));
      res.on('aborted', () => resolve({ status: -1, complete: false }));
    });
    req.on('error', () => resolve({ status: -1, complete: false }));
    req.end();
  });
}

function makePush(i: number): Push {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, n: i }));
  const layers = [randomBytes((3 << 20) + 1000 * i), randomBytes((5 << 20) + 777 * i)];
  const blobs: Blob[] = [config, ...layers].map((data) => ({ digest: sha(data), data, done: false }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blobs[0].digest, size: config.length },
    layers: layers.map((l, j) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: blobs[j + 1].digest, size: l.length })),
  }));
  return { repo: `crash/r${i}`, blobs, manifest, tagged: false };
}

/**
 * Push one image in 1 MiB chunks. `retries` 0 gives up at the first failure (the kill); a retry
 * run resumes each blob's session where the server says it stands, or opens a new one when the
 * server no longer knows the session.
 */
async function push(client: RegistryClient, p: Push, retries: number, onBytes: (n: number) => void, counts = { resumed: 0, fresh: 0 }): Promise<void> {
  for (const b of p.blobs) {
    if (b.done) continue;
    if (retries > 0 && (await client.hasBlob(p.repo, b.digest, true))) { b.done = true; continue; }
    if (b.location !== undefined && retries > 0) {
      try {
        await client.uploadStatus(p.repo, b.location);
        counts.resumed++;
      } catch {
        b.location = undefined;
      }
    }
    if (b.location === undefined) {
      b.location = await client.startUpload(p.repo);
      if (retries > 0) counts.fresh++;
    }
    let last = 0;
    await client.putBlobChunked(p.repo, b.location, b.digest, b.data.length, CHUNK,
      (start, end) => Readable.from([b.data.subarray(start, end + 1)]),
      { retries, onChunk: (done) => { onBytes(done - last); last = done; } });
    b.done = true;
  }
  await client.putManifest(p.repo, 'latest', p.manifest, OCI_MANIFEST);
  p.tagged = true;
}

/** Every file in the blob pool hashes to its name. */
function checkPool(storage: string): number {
  const dir = join(storage, 'blobs', 'sha256');
  let n = 0;
  let names: string[] = [];
  try { names = readdirSync(dir); } catch { return 0; }
  for (const hex of names) {
    if (hex.endsWith('.tmp')) continue;
    assert.equal(sha(readFileSync(join(dir, hex))), `sha256:${hex}`, `pool file ${hex} is corrupt`);
    n++;
  }
  return n;
}

test('kill -9 during 20 concurrent pushes: nothing corrupt is served, the pushes complete on retry', { timeout: 180_000 }, async (t) => {
  const work = tempDir('pier-registry-crash-');
  const storage = join(work, 'storage');
  const pushes = Array.from({ length: PUSHES }, (_, i) => makePush(i));
  const total = pushes.reduce((s, p) => s + p.blobs.reduce((t, b) => t + b.data.length, 0), 0);
  const byDigest = new Map(pushes.flatMap((p) => p.blobs.map((b) => [b.digest, { repo: p.repo, blob: b }] as const)));
  const bad: string[] = [];
  let checks = 0, served = 0;
  const check = async (host: string, repo: string, digest: string) => {
    const r = await getBlob(host, repo, digest);
    checks++;
    if (r.status === 200 && r.complete) {
      served++;
      if (r.got !== digest) bad.push(`${repo}@${digest} served bytes of ${r.got}`);
    }
  };
  let srv = await serve(storage, '127.0.0.1:0');
  const host = srv.host;
  try {
    // phase 1: 20 pushes at once; SIGKILL once ~40% of the bytes were acknowledged
    let acked = 0;
    let killing: Promise<void> | undefined;
    const client1 = new RegistryClient(host, { plainHttp: true });
    let checking = true;
    const checker = (async () => {
      const digests = [...byDigest.keys()];
      for (let i = 0; checking; i++) {
        const d = digests[i % digests.length];
        await check(host, byDigest.get(d)!.repo, d);
      }
    })();
    const results = await Promise.allSettled(pushes.map((p) => push(client1, p, 0, (n) => {
      acked += n;
      if (acked > total * 0.4 && !killing) killing = kill9(srv.proc);
    })));
    await killing;
    checking = false;
    await checker;
    client1.close();
    const interrupted = pushes.filter((p) => !p.tagged);
    assert.ok(interrupted.length > 0, 'the kill interrupted some pushes');
    assert.ok(results.some((r) => r.status === 'rejected'));

    // the pool holds only verified bytes
    checkPool(storage);

    // phase 2: restart on the same storage and port; whatever it serves verifies
    srv = await serve(storage, host);
    for (const [d, { repo }] of byDigest) await check(host, repo, d);
    assert.deepEqual(bad, []);

    // retry the interrupted pushes, all at once, with the checker running again
    const counts = { resumed: 0, fresh: 0 };
    const client2 = new RegistryClient(host, { plainHttp: true });
    checking = true;
    const checker2 = (async () => {
      const digests = [...byDigest.keys()];
      for (let i = 0; checking; i++) {
        const d = digests[(i * 7) % digests.length];
        await check(host, byDigest.get(d)!.repo, d);
      }
    })();
    try {
      await Promise.all(interrupted.map((p) => push(client2, p, 3, () => {}, counts)));
    } finally {
      checking = false;
      await checker2;
      client2.close();
    }
    assert.ok(pushes.every((p) => p.tagged));
    assert.ok(counts.resumed > 0, `some sessions resumed (${JSON.stringify(counts)})`);
    t.diagnostic(`${interrupted.length} of ${PUSHES} pushes interrupted; on retry ${counts.resumed} sessions resumed, ${counts.fresh} opened afresh`);

    // phase 3: pull everything back by tag, manifest then blobs; every byte verifies
    const client3 = new RegistryClient(host, { plainHttp: true });
    try {
      for (const p of pushes) {
        const m = await client3.getManifest(p.repo, 'latest');
        assert.equal(m.digest, sha(p.manifest));
        const parsed = JSON.parse(m.bytes.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
        for (const d of [parsed.config.digest, ...parsed.layers.map((l) => l.digest)]) {
          const r = await getBlob(host, p.repo, d);
          assert.equal(r.status, 200, `${p.repo}@${d}`);
          assert.equal(r.got, d);
        }
      }
    } finally {
      client3.close();
    }
    assert.equal(checkPool(storage), byDigest.size + pushes.length);
    assert.deepEqual(bad, [], `corrupt answers: ${bad.join('; ')}`);
    assert.ok(served > 0);
    t.diagnostic(`${checks} blob GETs while pushing, ${served} complete answers, all verified`);
  } finally {
    await kill9(srv.proc);
    cleanup(work);
  }
});
