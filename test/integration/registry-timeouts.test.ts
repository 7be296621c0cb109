/**
 * The registry's connection guard rails, written as the attacks of issue 10 finding 7: 100 clients
 * that never finish their headers (a slowloris) are closed while the registry keeps serving; a
 * body that stops moving is cut (through Node and through the addon's socket reads), a download
 * nobody reads is dropped; malformed request targets get a 400 in the spec's error JSON. And what
 * the timeouts must not hurt: an upload or download that flows slowly for longer than the idle
 * timeout completes, on both paths.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { request as httpRequest } from 'node:http';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../../src/registry/server/index.ts';
import { nativeIo } from '../../src/registry/native.ts';
import { cleanup, tempDir } from '../helpers/image.ts';
import { pierAsync, TOP } from '../helpers/pier.ts';

const HEADER_TIMEOUT_MS = 1000;
const IDLE_TIMEOUT_MS = 2000;
/** How long anything the server should close may take to be closed, at most (generous: a loaded machine). */
const BOUND_MS = 30_000;

let work = '';
let reg: RunningRegistry;
let port = 0;

const sha = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  work = tempDir('pier-regtimeouts-');
  reg = await startRegistry({
    listen: '127.0.0.1:0', storage: join(work, 'storage'),
    limits: { headersTimeoutMs: HEADER_TIMEOUT_MS, idleTimeoutMs: IDLE_TIMEOUT_MS },
  });
  port = Number(new URL(reg.url).port);
  reg.server.on('connection', (s: Socket) => { serverSockets.set(s.remotePort!, s); s.once('close', () => { if (serverSockets.get(s.remotePort!) === s) serverSockets.delete(s.remotePort!); }); });
});
after(async () => {
  await reg?.close();
  cleanup(work);
});

/** `p`, or a rejection naming `what` once BOUND_MS have passed (the timer never outlives the race). */
async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: still open after ${BOUND_MS} ms`)), BOUND_MS); })]);
  } finally {
    clearTimeout(timer);
  }
}

interface Raw { sock: Socket; data: () => string; closed: Promise<void> }

/** A raw TCP connection that records what it receives and when it closes. */
async function raw(p = port): Promise<Raw> {
  const sock = connect(p, '127.0.0.1');
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  sock.on('error', () => {});
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  await new Promise<void>((r, j) => { sock.once('connect', () => r()); sock.once('error', j); });
  return { sock, data: () => Buffer.concat(chunks).toString('latin1'), closed };
}

/** The server's sockets, by the client's port (recorded from the start: accept may beat the client's 'connect'). */
const serverSockets = new Map<number, Socket>();

/** The server's side of a client connection, to watch it close. */
async function serverSideOf(client: Socket): Promise<Socket> {
  return within((async () => {
    for (;;) {
      const s = serverSockets.get(client.localPort!);
      if (s) return s;
      await sleep(10);
    }
  })(), 'the server side of a connection');
}

/** Until the server's side of `client` is closed. */
async function serverCloses(client: Socket, what: string): Promise<void> {
  const s = await serverSideOf(client);
  await within(new Promise<void>((r) => { if (s.destroyed) r(); else s.once('close', () => r()); }), what);
}

async function v2Ok(url = reg.url): Promise<void> {
  const r = await fetch(`${url}/v2/`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), '{}');
}

/** A fresh upload session of `repo`: its location. */
async function session(repo: string): Promise<string> {
  const r = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(r.status, 202);
  await r.arrayBuffer();
  return r.headers.get('location')!;
}

/** The status line and headers of the first answer on a raw connection, once it is complete. */
async function answer(c: Raw): Promise<{ status: number; head: string; body: string }> {
  await within(new Promise<void>((resolve, reject) => {
    const check = () => { if (/\r\n\r\n/.test(c.data())) { c.sock.off('data', check); resolve(); } };
    c.sock.on('data', check);
    void c.closed.then(() => { check(); reject(new Error(`the connection closed without an answer (got ${JSON.stringify(c.data().slice(0, 60))})`)); });
    check();
  }), 'the answer');
  const text = c.data();
  const end = text.indexOf('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), head: text.slice(0, end), body: text.slice(end + 4) };
}

test('100 half-sent (or silent) requests are all closed by the header timeout while the registry keeps serving', async () => {
  // the default idle timeout (120 s) is longer than BOUND_MS: only the header timeout can close these
  const slow = await startRegistry({ listen: '127.0.0.1:0', storage: join(work, 'slowloris'), metricsListen: '127.0.0.1:0', limits: { headersTimeoutMs: HEADER_TIMEOUT_MS } });
  const conns: Raw[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      // a tenth on the --metrics-listen server, which wears the same guard rails; a tenth send
      // nothing at all
      const c = await raw(Number(new URL(i % 10 === 9 ? slow.metricsUrl! : slow.url).port));
      if (i % 10 !== 4) c.sock.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n'); // no blank line: the headers never end
      conns.push(c);
    }
    await v2Ok(slow.url); // served meanwhile
    await within(Promise.all(conns.map((c) => c.closed)), '100 half-sent requests');
    for (const c of conns) {
      const got = c.data();
      assert.ok(got === '' || got.startsWith('HTTP/1.1 408 '), `a closed slow client is told 408 or nothing, not ${JSON.stringify(got.slice(0, 40))}`);
    }
    await v2Ok(slow.url); // and after
    const m = await fetch(`${slow.metricsUrl}/metrics`);
    assert.equal(m.status, 200);
    await m.text();
  } finally {
    for (const c of conns) c.sock.destroy();
    await slow.close();
  }
});

test('without limits the registry still has a header and an idle timeout (and no whole-request deadline)', async () => {
  const d = await startRegistry({ listen: '127.0.0.1:0', storage: join(work, 'defaults') });
  try {
    assert.ok(d.server.headersTimeout > 0 && Number.isFinite(d.server.headersTimeout), `headersTimeout ${d.server.headersTimeout}`);
    assert.ok(d.server.timeout > 0 && Number.isFinite(d.server.timeout), `idle timeout ${d.server.timeout}`);
    assert.equal(d.server.requestTimeout, 0, 'blob bodies may take long');
  } finally {
    await d.close();
  }
  await assert.rejects(startRegistry({ listen: '127.0.0.1:0', storage: join(work, 'bad'), limits: { headersTimeoutMs: 0 } }), /limits\.headersTimeoutMs must be a positive number/);
});

for (const target of ['http://[', '/v2/%', '/v2/%zz/blobs/uploads/']) {
  test(`a malformed request target (${target}) gets a 400 in the spec's error JSON, and the registry keeps serving`, async () => {
    const c = await raw();
    try {
      c.sock.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
      const a = await answer(c);
      assert.equal(a.status, 400, `${target}: ${a.head}`);
      assert.match(a.head, /\r\ncontent-type: application\/json/i);
      assert.match(a.head, /\r\ndocker-distribution-api-version: registry\/2\.0/i);
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(a.head)?.[1]);
      await within(new Promise<void>((r) => { const full = () => { if (Buffer.byteLength(c.data().slice(c.data().indexOf('\r\n\r\n') + 4), 'latin1') >= length) r(); else c.sock.once('data', full); }; full(); }), 'the error body');
      const body = JSON.parse(c.data().slice(c.data().indexOf('\r\n\r\n') + 4)) as { errors: { code: string; detail: { reason: string } }[] };
      assert.equal(body.errors[0].code, 'UNSUPPORTED');
      assert.match(body.errors[0].detail.reason, /malformed/);
    } finally {
      c.sock.destroy();
    }
    await v2Ok();
  });
}

test('a PATCH body that stops moving is cut by the idle timeout, through Node and through the addon', async () => {
  assert.ok(nativeIo(), 'the pierfs addon is built (scripts/build.mjs), so the addon path is tested too');
  // 100 KiB goes through Node's stream; 4 MiB is read off the socket by the addon's thread
  for (const size of [100 << 10, 4 << 20]) {
    const loc = await session('stall/up');
    const c = await raw();
    try {
      c.sock.write(`PATCH ${loc} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`);
      c.sock.write(randomBytes(32 << 10)); // then nothing more
      await serverCloses(c.sock, `a stalled ${size}-byte body`);
      await within(c.closed, 'the client side');
    } finally {
      c.sock.destroy();
    }
    // nothing of the cut chunk was kept: the session is still at offset 0
    const st = await fetch(reg.url + loc);
    assert.equal(st.status, 204);
    assert.equal(st.headers.get('range'), '0-0');
  }
});

/** Send `data` as a PATCH body in `pieces`, `gapMs` apart: slower than the idle timeout in total, never idle that long. */
async function slowPatch(loc: string, data: Buffer, pieces: number, gapMs: number): Promise<{ status: number; head: string }> {
  const c = await raw();
  try {
    c.sock.write(`PATCH ${loc} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`);
    const step = Math.ceil(data.length / pieces);
    for (let off = 0; off < data.length; off += step) {
      await sleep(gapMs);
      c.sock.write(data.subarray(off, off + step));
    }
    return await answer(c);
  } finally {
    c.sock.destroy();
  }
}

test('an upload that flows slowly for longer than the idle timeout completes, on both paths', async () => {
  for (const size of [200 << 10, 2 << 20]) {
    const data = randomBytes(size);
    const loc = await session('slow/up');
    // 20 pieces 250 ms apart: about 5 s in all, against an idle timeout of 2 s
    const a = await slowPatch(loc, data, 20, 250);
    assert.equal(a.status, 202, a.head);
    assert.match(a.head, new RegExp(`\\r\\nrange: 0-${size - 1}\\r\\n`, 'i'));
    if (size >= 1 << 20) assert.match(a.head, /\r\nconnection: close(\r\n|$)/i, 'the addon read this body (its connection cannot be reused)');
    const put = await fetch(`${reg.url}${loc}?digest=${sha(data)}`, { method: 'PUT' });
    assert.equal(put.status, 201, await put.text());
    const got = Buffer.from(await (await fetch(`${reg.url}/v2/slow/up/blobs/${sha(data)}`)).arrayBuffer());
    assert.equal(sha(got), sha(data));
  }
});

/** Push `data` into `repo` in one request. */
async function pushBlob(repo: string, data: Buffer): Promise<string> {
  const d = sha(data);
  const r = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/?digest=${d}`, { method: 'POST', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(r.status, 201, await r.text());
  return d;
}

test('a download read slowly for longer than the idle timeout completes; one nobody reads is dropped', async () => {
  // large enough that the socket buffers cannot take it: the server's sendfile waits on the reader
  const data = randomBytes(64 << 20);
  const d = await pushBlob('slow/down', data);

  const hash = createHash('sha256');
  let got = 0;
  await within(new Promise<void>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: `/v2/slow/down/blobs/${d}`, agent: false }, (res) => {
      assert.equal(res.statusCode, 200);
      let sincePause = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        got += c.length;
        sincePause += c.length;
        // a pause after every 4 MiB: 16 pauses of 300 ms, about 5 s in all, never 2 s idle
        if (sincePause >= 4 << 20) { sincePause = 0; res.pause(); setTimeout(() => res.resume(), 300); }
      });
      res.on('end', () => resolve());
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`the download was cut after ${got} bytes`)));
    });
    req.on('error', reject);
    req.end();
  }), 'the slow download');
  assert.equal(got, data.length, 'the whole blob arrived');
  assert.equal(`sha256:${hash.digest('hex')}`, d);

  // a reader that stops: the server drops the connection once nothing has moved for the idle timeout
  const c = await raw();
  try {
    c.sock.write(`GET /v2/slow/down/blobs/${d} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await within(new Promise<void>((r) => { const first = () => { c.sock.off('data', first); c.sock.pause(); r(); }; c.sock.on('data', first); }), 'the first bytes');
    await serverCloses(c.sock, 'a download nobody reads');
  } finally {
    c.sock.destroy();
  }
  await v2Ok();
});

test('pier registry serve --header-timeout / --idle-timeout: honoured, and refused when not positive', async () => {
  for (const [flag, value] of [['--header-timeout', '0'], ['--idle-timeout', '-1'], ['--header-timeout', 'soon']]) {
    const r = await pierAsync(join(work, 'root'), ['registry', 'serve', '--listen', '127.0.0.1:0', '--storage', join(work, 'cli-bad'), flag, value]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^pier: registry serve: ${flag} must be (a positive number of seconds|an integer)`));
  }
  const proc = spawn(join(TOP, 'bin', 'pier'), ['registry', 'serve', '--listen', '127.0.0.1:0', '--storage', join(work, 'cli'), '--access-log', 'none', '--header-timeout', '1', '--idle-timeout', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await within(new Promise<string>((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (c: Buffer) => { out += c; const m = /listening on (http:\/\/\S+)/.exec(out); if (m) resolve(m[1]); });
      proc.once('exit', (code) => reject(new Error(`pier registry serve exited ${code}`)));
    }), 'pier registry serve');
    const half = await raw(Number(new URL(url).port));
    half.sock.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n');
    await within(half.closed, 'a half-sent request to pier registry serve --header-timeout 1');
    assert.match(half.data(), /^(HTTP\/1\.1 408 |$)/);
    // the idle timeout: a request whose body stops after its headers
    const idle = await raw(Number(new URL(url).port));
    idle.sock.write('PUT /v2/x/manifests/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 100\r\n\r\n{');
    await within(idle.closed, 'a stalled body to pier registry serve --idle-timeout 2');
    await v2Ok(url);
  } finally {
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    await exited;
  }
});

