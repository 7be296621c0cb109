/**
 * pierd's API as an attacker (or a buggy client) meets it: request targets that do not parse, a body
 * far over the limit, bodies and query parameters of the wrong shape, a runtime that is any host
 * binary, mounts over /proc. Each must be refused with one line naming what was wrong, leave no
 * container behind, and never end the daemon — its attached sessions and `logs -f` streams live in
 * that one process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PIER, testEngine, until, type TestEngine } from '../helpers/engine.ts';

let e: TestEngine;
const sock = () => join(e.run, 'pier.sock');

/** Short API timeouts, so that outliving them is quick to show (pierd reads these at start). */
const HEADER_TIMEOUT_MS = 1000;
const IDLE_TIMEOUT_MS = 1500;

before(() => {
  e = testEngine();
  e.env.PIER_API_HEADER_TIMEOUT_MS = String(HEADER_TIMEOUT_MS);
  e.env.PIER_API_IDLE_TIMEOUT_MS = String(IDLE_TIMEOUT_MS);
  // A runtime configured the docker way, read once when pierd starts (it has not started yet).
  writeFileSync(join(e.root, 'daemon.json'), JSON.stringify({ runtimes: { 'my-runc': { path: '/usr/sbin/runc' } } }), { mode: 0o600 });
  e.ok(['ps']);
});
after(async () => { await e.close(); });

/** Bytes written as they are to the API socket; `closed` is everything the daemon answered, once it closes. */
function rawOpen(bytes: string): { closed: Promise<string>; destroy(): void } {
  const s = connect(sock());
  let out = '';
  s.setEncoding('utf8');
  s.on('data', (d: string) => { out += d; });
  const closed = new Promise<string>((resolve) => {
    s.on('error', () => resolve(out));
    s.on('close', () => resolve(out));
  });
  s.write(bytes);
  return { closed, destroy: () => s.destroy() };
}
const raw = (bytes: string) => rawOpen(bytes).closed;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer { status: number; body: string; json: any }

/** One request over the socket with node:http; `body` is sent as given (a string, or written by a function). */
function api(method: string, path: string, body?: string | null | ((w: (chunk: string) => Promise<void>) => Promise<void>), headers: Record<string, string | number> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock(), method, path, headers: { ...(typeof body === 'string' ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => {
        let json: unknown;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, body: text, json });
      });
    });
    req.on('error', reject);
    if (typeof body === 'function') {
      const write = (chunk: string) => new Promise<void>((r) => { if (req.write(chunk)) r(); else req.once('drain', () => r()); });
      void body(write).then(() => req.end(), reject);
    } else req.end(typeof body === 'string' ? body : undefined);
  });
}

const pid = () => Number(readFileSync(join(e.run, 'pierd.pid'), 'utf8'));
/** The running pierd's pid (the CLI starts one if an earlier failure took it down). */
const daemon = () => { e.ok(['ps']); return pid(); };
const alive = (p: number) => { try { process.kill(p, 0); return true; } catch { return false; } };

/** pierd is the same process and still answers. */
async function sameDaemon(before: number): Promise<void> {
  assert.ok(alive(before), `pierd ${before} is gone`);
  assert.equal(pid(), before, 'pierd was not replaced');
  const ping = await api('GET', '/v1/_ping');
  assert.equal(ping.status, 200);
}

/** No container record exists: neither the API nor the state dir has one. */
async function noContainers(): Promise<void> {
  const list = await api('GET', '/v1/containers?all=1');
  assert.deepEqual(list.json, [], 'no container is listed');
  const dir = join(e.root, 'containers');
  assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [], 'no container dir is left');
}

/** Remove whatever a failed refusal made, so one case's failure is not the next one's. */
function removeAll(): void {
  const ids = e.pier(['ps', '-aq']).stdout.split('\n').filter(Boolean);
  if (ids.length) e.pier(['rm', '-f', '-v', ...ids]);
}

/** A 400 whose message is one line and matches `field`. */
function refused(a: Answer, field: RegExp, status = 400): void {
  assert.equal(a.status, status, `expected ${status}, got ${a.status}: ${a.body}`);
  const msg = a.json?.message as string;
  assert.equal(typeof msg, 'string', a.body);
  assert.ok(!msg.includes('\n'), `one line: ${JSON.stringify(msg)}`);
  assert.match(msg, field);
}

const statusLine = (text: string) => text.split('\r\n')[0];

function vm(p: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${p}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('malformed request targets', () => {
  test('get 400, pierd lives on, and a running `logs -f` keeps streaming', async () => {
    const before = daemon();
    // A quiet container: one line, then nothing until it is told to go on.
    e.ok(['run', '-d', '--name', 'quiet', 'busybox', 'sh', '-c', 'echo first; while [ ! -e /go ]; do sleep 0.1; done; echo second']);
    const follow: ChildProcess = spawn(PIER, ['logs', '-f', 'quiet'], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    follow.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const ended = new Promise<number | null>((r) => follow.on('close', r));
    try {
      await until(() => out.includes('first\n'), 'logs -f shows the first line');
      const waited = api('POST', '/v1/containers/quiet/wait').catch((err: Error) => ({ status: 0, body: err.message, json: undefined }));
      // Quiet for twice the idle timeout: a whole request that waits on the daemon is not idle.
      await sleep(2 * IDLE_TIMEOUT_MS);
      for (const target of ['/v1/containers/%', 'http://[', '/v1/containers/%zz/logs', '/v1/%E0%A4%A', '/v1/networks/%', '/v1/volumes/a%']) {
        const answer = await raw(`GET ${target} HTTP/1.1\r\nHost: pierd\r\nConnection: close\r\n\r\n`);
        assert.match(statusLine(answer), /^HTTP\/1\.1 400 /, `GET ${target}: ${JSON.stringify(answer.slice(0, 200))}`);
        await sameDaemon(before);
      }
      // The stream that was open all along still delivers, and ends when the container does.
      e.ok(['exec', 'quiet', 'touch', '/go']);
      await until(() => out.includes('second\n'), 'logs -f shows the line written after the malformed requests');
      assert.equal(await ended, 0);
      assert.equal(out, 'first\nsecond\n');
      const w = await waited;
      assert.equal(w.status, 200, w.body);
      assert.equal(w.json.exitCode, 0);
    } finally {
      follow.kill('SIGKILL');
      e.pier(['rm', '-f', 'quiet']);
    }
  });
});

describe('timeouts', () => {
  test('headers that never end and a body that stops are cut off; pierd lives on', async () => {
    const before = daemon();
    const half = rawOpen('GET /v1/_ping HTTP/1.1\r\nHost: pierd\r\n');
    const stalled = rawOpen('POST /v1/containers HTTP/1.1\r\nHost: pierd\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"image":');
    try {
      let halfAnswer: string | undefined;
      let stalledAnswer: string | undefined;
      void half.closed.then((a) => { halfAnswer = a; });
      void stalled.closed.then((a) => { stalledAnswer = a; });
      // Generous: the timeouts are 1 and 1.5 s; node's defaults would hold both for a minute or more.
      await until(() => halfAnswer !== undefined, 'pierd closes a request whose headers never end');
      await until(() => stalledAnswer !== undefined, 'pierd closes a request whose body stopped');
      assert.match(halfAnswer!, /^(|HTTP\/1\.1 408 [^]*)$/);
      assert.equal(stalledAnswer, '');
      await sameDaemon(before);
      await noContainers();
    } finally {
      half.destroy();
      stalled.destroy();
    }
  });
});

describe('body limits', () => {
  test('an 8 MiB JSON body is a 413; a 128 MiB chunked one too, and pierd does not hold it', async () => {
    const before = daemon();
    const hwm = vm(before, 'VmHWM');
    const rss = vm(before, 'VmRSS');
    try {
      const big = JSON.stringify({ image: 'busybox', labels: { x: 'a'.repeat(8 * 1024 * 1024) } });
      const sized = await api('POST', '/v1/containers', big);
      const chunk = 'a'.repeat(1024 * 1024);
      const streamed = await api('POST', '/v1/containers', async (write) => {
        await write('{"image":"busybox","labels":{"x":"');
        for (let i = 0; i < 128; i++) await write(chunk);
        await write('"}}');
      }, { 'content-type': 'application/json' });
      // Generous bounds, not timings: buffering either body would have cost far more.
      const grewPeak = vm(before, 'VmHWM') - hwm;
      const grew = vm(before, 'VmRSS') - rss;
      assert.ok(grewPeak < 100 * 1024 * 1024, `peak RSS grew by ${grewPeak} bytes`);
      assert.ok(grew < 100 * 1024 * 1024, `RSS grew by ${grew} bytes`);
      refused(sized, /is 8388645 bytes; the limit is 4194304/, 413);
      refused(streamed, /exceeds the limit of 4194304 bytes/, 413);
      await sameDaemon(before);
      await noContainers();
    } finally {
      removeAll();
    }
  });
});

describe('schema checks: one 400 naming the field, nothing made', () => {
  const cases: [string, string, RegExp][] = [
    ['cmd is not an array', JSON.stringify({ image: 'busybox', cmd: 'notarray' }), /field cmd: expected array/],
    ['a null body', 'null', /container create: expected object/],
    ['a body that is a string', '"busybox"', /container create: expected object/],
    ['a bad extraHosts entry', JSON.stringify({ image: 'busybox', extraHosts: ['nocolon'] }), /field extraHosts\[0\]: expected HOST:IP/],
    ['an extraHosts entry with a bad address', JSON.stringify({ image: 'busybox', extraHosts: ['db:300.1.1.1'] }), /field extraHosts\[0\]/],
    ['log.maxFiles 0', JSON.stringify({ image: 'busybox', log: { maxFiles: 0 } }), /field log\.maxFiles: expected an integer 1-1000/],
    ['log.maxSize of 1 byte', JSON.stringify({ image: 'busybox', log: { maxSize: 1 } }), /field log\.maxSize/],
    ['a port out of range', JSON.stringify({ image: 'busybox', ports: [{ hostPort: 70000, containerPort: 80, protocol: 'tcp' }] }), /field ports\[0\]\.hostPort/],
    ['a protocol that is neither tcp nor udp', JSON.stringify({ image: 'busybox', ports: [{ hostPort: 8080, containerPort: 80, protocol: 'sctp' }] }), /field ports\[0\]\.protocol: expected tcp or udp/],
    ['an env entry with a NUL', JSON.stringify({ image: 'busybox', env: ['A=b\u0000c'] }), /field env\[0\]/],
    ['a label that is not a string', JSON.stringify({ image: 'busybox', labels: { a: 1 } }), /field labels\.a: expected string/],
    ['an unknown field', JSON.stringify({ image: 'busybox', privileged: true }), /unknown field privileged/],
    ['a bad container name', JSON.stringify({ image: 'busybox', name: 'a b' }), /invalid container name "a b"/],
    ['an alias that would add a line to /etc/hosts', JSON.stringify({ image: 'busybox', networkAliases: ['x\n1.2.3.4 evil'] }), /field networkAliases\[0\]/],
    ['an unknown stop signal', JSON.stringify({ image: 'busybox', stopSignal: 'SIGNOPE' }), /stopSignal: unknown signal "SIGNOPE"/],
    ['an unknown capability', JSON.stringify({ image: 'busybox', capAdd: ['CAP_NOPE'] }), /unknown capability "CAP_NOPE"/],
    ['a runtime that is a host binary', JSON.stringify({ image: 'busybox', runtime: '/bin/sh' }), /runtime: unknown runtime "\/bin\/sh" \(known: pier, runc, my-runc;/],
    ['a runtime nobody configured', JSON.stringify({ image: 'busybox', runtime: 'crun' }), /unknown runtime "crun"/],
    ['bad JSON', '{"image":', /not valid JSON/],
  ];
  for (const [what, body, field] of cases) {
    test(what, async () => {
      try {
        refused(await api('POST', '/v1/containers', body), field);
        await noContainers();
      } finally {
        removeAll();
      }
    });
  }

  test('network and volume bodies', async () => {
    refused(await api('POST', '/v1/networks', 'null'), /network create: expected object/);
    refused(await api('POST', '/v1/networks', JSON.stringify({ name: 'n1', gateway: 'nope' })), /field gateway: expected an IPv4 address/);
    refused(await api('POST', '/v1/networks', JSON.stringify({ name: 'n1', internal: 'yes' })), /field internal: expected boolean/);
    refused(await api('POST', '/v1/volumes', JSON.stringify({ name: 7 })), /volume create: field name/);
    refused(await api('POST', '/v1/volumes', JSON.stringify({ labels: [] })), /field labels/);
    assert.deepEqual((await api('GET', '/v1/networks')).json.map((n: { name: string }) => n.name), ['bridge']);
    assert.deepEqual((await api('GET', '/v1/volumes')).json, []);
  });
});

describe('query parameters', () => {
  test('since/until, tail, t, signal and flags are checked; unknown ones are refused', async () => {
    e.ok(['create', '--name', 'idle', 'busybox', 'true']);
    try {
      refused(await api('GET', '/v1/containers/idle/logs?since=garbage'), /query parameter since: expected an RFC 3339 time, unix seconds, or a duration like 10m, not "garbage"/);
      refused(await api('GET', '/v1/containers/idle/logs?until=2024-13-01T00:00:00Z'), /query parameter until/);
      refused(await api('GET', '/v1/containers/idle/logs?tail=-1'), /query parameter tail/);
      refused(await api('POST', '/v1/containers/idle/stop?t=soon'), /query parameter t: expected whole seconds/);
      refused(await api('POST', '/v1/containers/idle/stop?t=99999999'), /query parameter t/);
      refused(await api('POST', '/v1/containers/idle/kill?signal=SIGNOPE'), /query parameter signal: expected a signal name or number/);
      refused(await api('DELETE', '/v1/containers/idle?force=maybe'), /query parameter force: expected 1, true, 0 or false/);
      refused(await api('DELETE', '/v1/containers/idle?forse=1'), /unknown query parameter "forse" \(this endpoint takes force, v\)/);
      refused(await api('GET', '/v1/containers?all=1&all=0'), /query parameter all given more than once/);
      // What docker's since/until take is accepted.
      for (const since of ['10m', '1h30m', '0', '1700000000', '1700000000.123456789', '2024-05-01T10:00:00Z', '2024-05-01T10:00:00.5+02:00', '2024-05-01T10:00:00', '2024-05-01']) {
        const a = await api('GET', `/v1/containers/idle/logs?since=${encodeURIComponent(since)}&tail=all`);
        assert.equal(a.status, 200, `since=${since}: ${a.body}`);
      }
      // And what the CLI sends for its own forms.
      e.ok(['logs', '--since', '10m', '--until', '2099-01-01T00:00:00Z', '--tail', 'all', 'idle']);
      e.ok(['logs', '--since', '2024-05-01T10:00:00+02:00', '-n', '5', 'idle']);
      assert.equal(e.inspect('idle').state.status, 'created', 'the refused stop and kill did nothing');
    } finally {
      e.pier(['rm', '-f', 'idle']);
    }
  });
});

describe('runtimes are configured, not named by path', () => {
  test('runc by name, a daemon.json runtime by name; the record keeps the name and the binary', () => {
    assert.equal(e.ok(['run', '--rm', '--runtime', 'runc', 'busybox', 'echo', 'via runc']), 'via runc\n');
    e.ok(['create', '--name', 'mine', '--runtime', 'my-runc', 'busybox', 'echo', 'via my-runc']);
    try {
      const info = e.inspect('mine');
      assert.equal(info.config.runtime, 'my-runc');
      assert.equal(info.runtimePath, '/usr/sbin/runc');
      assert.equal(e.ok(['start', '-a', 'mine']), 'via my-runc\n');
    } finally {
      e.pier(['rm', '-f', 'mine']);
    }
  });

  test('the CLI refuses an unknown runtime in one line and makes nothing', async () => {
    const r = e.pier(['run', '--runtime', '/bin/sh', 'busybox', 'true']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /^pier: run: runtime: unknown runtime "\/bin\/sh" \(known: pier, runc, my-runc;[^\n]*\n$/);
    await noContainers();
  });

  test('a record of an older pier: a configured runtime\'s path starts (and is recorded by name); any other path is refused at start', async () => {
    e.ok(['create', '--name', 'old', '--runtime', 'runc', 'busybox', 'echo', 'from an old record']);
    const id = e.inspect('old').id;
    const file = join(e.root, 'containers', id, 'container.json');
    const rewrite = async (runtime: string) => {
      // pierd keeps records in memory: edit it while no pierd runs, as an upgrade would find it.
      const p = pid();
      process.kill(p, 'SIGTERM');
      await until(() => !alive(p), 'pierd stops');
      const rec = JSON.parse(readFileSync(file, 'utf8'));
      rec.config.runtime = runtime;
      delete rec.runtimePath;
      writeFileSync(file, JSON.stringify(rec));
    };
    try {
      await rewrite('/usr/sbin/runc');
      assert.equal(e.ok(['start', '-a', 'old']), 'from an old record\n');
      assert.equal(e.inspect('old').config.runtime, 'runc');
      await rewrite('/bin/sh');
      const r = e.pier(['start', 'old']);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /runtime "\/bin\/sh" is not configured \(known: pier, runc, my-runc;/);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    } finally {
      e.pier(['rm', '-f', 'old']);
    }
  });
});

describe('mounts over /proc or /', () => {
  test('-v HOST:/proc, -v HOST:/proc/sys, an anonymous /proc/x and -v HOST:/ are refused at create, nothing made', async () => {
    for (const [spec, shown] of [['/tmp:/proc', '/proc'], ['/tmp:/proc/sys/kernel:ro', '/proc/sys/kernel'], ['/proc/x', '/proc/x'], ['vol1:/proc', '/proc'], ['/tmp:/', '/'], ['/tmp:/x/../proc', null]] as const) {
      const r = e.pier(['run', '-v', spec, 'busybox', 'true']);
      assert.notEqual(r.status, 0, spec);
      assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
      if (shown) assert.match(r.stderr, new RegExp(`invalid volume destination ${shown.replace(/\//g, '\\/')} in`), r.stderr);
      await noContainers();
    }
    assert.deepEqual((await api('GET', '/v1/volumes')).json, [], 'no volume was made');
  });

  test('an image whose mount point is a symlink to /proc is refused too, and leaves nothing', async () => {
    const ctx = join(e.root, 'ctx-proc-link');
    mkdirSync(ctx, { recursive: true });
    writeFileSync(join(ctx, 'Containerfile'), 'FROM busybox\nRUN ln -s /proc /data && ln -s / /top\n');
    e.ok(['build', '-t', 'proclink', ctx], { timeout: 120_000 });
    try {
      for (const [spec, msg] of [['/tmp:/data', /invalid volume destination \/data \(a symlink in the image to \/proc\)/], ['/data', /\/data \(a symlink in the image to \/proc\)/], ['/tmp:/top', /\/top \(a symlink in the image to \/\)/]] as const) {
        const r = e.pier(['run', '-v', spec, 'proclink', 'true']);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, msg);
        await noContainers();
      }
      assert.deepEqual((await api('GET', '/v1/volumes')).json, [], 'the anonymous volume was not left behind');
    } finally {
      e.pier(['rmi', 'proclink']);
      rmSync(ctx, { recursive: true, force: true });
    }
  });
});
