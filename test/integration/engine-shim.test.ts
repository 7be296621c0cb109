/**
 * The per-container shim with real containers: exit files, json logs (rotation, follow), attach
 * with stdin, tty and resize, start failures that leave nothing, surviving its parent's SIGKILL,
 * an external runc, the OOM killer, shim hosts, and start latencies.
 *
 * The shim runs from the sources (src/cli/pier-shim.ts) so the test always matches the code;
 * PIER_SHIM_TEST_BUNDLE=1 runs dist/pier-shim.cjs instead. Latencies are measured with the bundle
 * when it exists.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { baseSpec, makeBundle } from '../helpers/rootfs.ts';
import { TOP, cgroupDirsMatching } from '../helpers/pier.ts';
import type { Spec } from '../../src/runtime/spec.ts';
import { Runtime } from '../../src/runtime/index.ts';
import {
  spawnShim, startShimHost, ShimClient, readExit, readLogs, type ShimConfig, type LogEntry, type ExitStatus,
} from '../../src/engine/shim/index.ts';

const SOURCE = join(TOP, 'src', 'cli', 'pier-shim.ts');
const BUNDLE = join(TOP, 'dist', 'pier-shim.cjs');
const SCRIPT = process.env.PIER_SHIM_TEST_BUNDLE ? BUNDLE : SOURCE;
const RUNC = '/usr/sbin/runc';

const top = mkdtempSync(join(tmpdir(), 'pier-shim-test-'));
const runtimeRoot = join(top, 'runtime');
const runcRoot = join(top, 'runc');
const shimPids: number[] = [];

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

after(async () => {
  for (const pid of shimPids) if (alive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  const rt = new Runtime({ root: runtimeRoot });
  for (const s of existsSync(runtimeRoot) ? rt.list() : []) await rt.delete(s.id, true).catch(() => undefined);
  if (existsSync(runcRoot)) {
    for (const id of readdirSync(runcRoot)) spawn(RUNC, ['--root', runcRoot, 'delete', '--force', id], { stdio: 'ignore' });
    await sleep(300);
  }
  rmSync(top, { recursive: true, force: true });
});

let n = 0;
/** A fresh container dir, id and bundle, with the engine's on-disk layout. */
function setup(args: string[], opts: { spec?: (s: Spec) => void; stdin?: boolean; tty?: boolean; runc?: boolean; maxSize?: number; maxFiles?: number; deferStart?: boolean } = {}): ShimConfig {
  const spec = baseSpec(args);
  if (opts.tty) spec.process!.terminal = true;
  opts.spec?.(spec);
  const bundle = makeBundle(spec);
  const dir = join(top, `c${++n}`);
  const bdir = join(dir, 'bundle');
  // makeBundle puts it in tmpdir; move it under the container dir so after() removes it
  mkdirSync(dir, { recursive: true });
  renameSync(bundle, bdir);
  const id = (`${n}`.padStart(4, '0') + Math.random().toString(16).slice(2) + '0'.repeat(64)).slice(0, 64);
  return {
    id,
    bundle: bdir,
    runtimeRoot: opts.runc ? runcRoot : runtimeRoot,
    ...(opts.runc ? { runtime: RUNC } : {}),
    log: { path: join(dir, 'container.log'), maxSize: opts.maxSize ?? 0, maxFiles: opts.maxFiles ?? 1 },
    socket: join(top, 'shims', `${n}.sock`),
    exitFile: join(dir, 'exit.json'),
    stdin: opts.stdin ?? false,
    tty: opts.tty ?? false,
    shimLog: join(dir, 'shim.log'),
    ...(opts.deferStart ? { deferStart: true } : {}),
  };
}

async function start(cfg: ShimConfig) {
  const r = await spawnShim(cfg, { script: SCRIPT });
  shimPids.push(r.shimPid);
  return r;
}

async function waitExitFile(cfg: ShimConfig, ms = 20_000): Promise<ExitStatus> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) {
    const e = readExit(cfg.exitFile);
    if (e) return e;
  }
  throw new Error(`no exit file ${cfg.exitFile} after ${ms} ms`);
}

/** wait() over the socket, falling back to the exit file if the shim is already gone. */
async function waitExit(cfg: ShimConfig): Promise<ExitStatus> {
  try {
    const c = await ShimClient.connect(cfg.socket);
    try { return await c.wait(); } finally { c.close(); }
  } catch {
    return waitExitFile(cfg);
  }
}

async function gone(pid: number, ms = 3000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(10)) if (!alive(pid)) return true;
  return !alive(pid);
}

const logEntries = (cfg: ShimConfig): LogEntry[] => readFileSync(cfg.log.path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogEntry);

class Sink extends Writable {
  text = '';
  _write(chunk: Buffer, _enc: string, cb: () => void) { this.text += chunk.toString(); cb(); }
}

/** Nothing of the container is left: runtime state, cgroups, socket, shim. */
async function assertNothingLeft(cfg: ShimConfig, shimPid?: number) {
  if (shimPid) assert.ok(await gone(shimPid), `shim ${shimPid} exited`);
  assert.ok(!existsSync(join(cfg.runtimeRoot, cfg.id)), 'no runtime state dir');
  assert.deepEqual(cgroupDirsMatching(new RegExp(cfg.id)), [], 'no cgroup');
  // the socket goes once the last client (the waiter that just heard the exit) hangs up
  for (const end = Date.now() + 2000; existsSync(cfg.socket) && Date.now() < end;) await sleep(10);
  assert.ok(!existsSync(cfg.socket), 'socket removed');
  const procs = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(cfg.id); } catch { return false; }
  });
  assert.deepEqual(procs, [], 'no process mentions the container id');
}

test('echo and exit 3: exit file, stdout and stderr in the log, nothing left', async () => {
  const cfg = setup(['sh', '-c', 'echo hello; echo oops >&2; exit 3']);
  const { shimPid, initPid } = await start(cfg);
  assert.ok(initPid > 0 && shimPid > 0);
  const exit = await waitExit(cfg);
  assert.equal(exit.exitCode, 3);
  assert.equal(exit.oomKilled, false);
  assert.ok(Date.parse(exit.finishedAt) >= Date.parse(exit.startedAt));
  assert.deepEqual(readExit(cfg.exitFile), exit);
  const entries = logEntries(cfg);
  assert.deepEqual(entries.map((e) => [e.stream, e.log]).sort(), [['stderr', 'oops\n'], ['stdout', 'hello\n']]);
  for (const e of entries) assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
  await assertNothingLeft(cfg, shimPid);
});

test('log rotation with a small maxSize: bounded file count, tail across files', async () => {
  const cfg = setup(['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done'], { maxSize: 8192, maxFiles: 3 });
  const { shimPid } = await start(cfg);
  assert.equal((await waitExit(cfg)).exitCode, 0);
  const dir = join(cfg.log.path, '..');
  const files = readdirSync(dir).filter((f) => f.startsWith('container.log'));
  assert.deepEqual(files.sort(), ['container.log', 'container.log.1', 'container.log.2']);
  for (const f of files) assert.ok(statSync(join(dir, f)).size <= 8192, `${f} within maxSize`);
  // ~75 bytes an entry: a file holds ~110 lines, so the last 150 span two files
  const tail = [];
  for await (const e of readLogs(cfg.log.path, { tail: 150 })) tail.push(e.log);
  assert.deepEqual(tail, Array.from({ length: 150 }, (_, i) => `line ${1850 + i}\n`));
  await assertNothingLeft(cfg, shimPid);
});

test('follow sees new lines as they come and ends when the container exits', async () => {
  const cfg = setup(['sh', '-c', 'for i in 1 2 3 4; do echo "tick $i"; sleep 0.2; done']);
  await start(cfg);
  const seen: Array<{ log: string; at: number }> = [];
  const t0 = Date.now();
  for await (const e of readLogs(cfg.log.path, { follow: true, exitFile: cfg.exitFile })) seen.push({ log: e.log, at: Date.now() - t0 });
  assert.deepEqual(seen.map((s) => s.log), ['tick 1\n', 'tick 2\n', 'tick 3\n', 'tick 4\n']);
  assert.ok(seen[3].at - seen[0].at >= 400, `lines arrived over time, not at the end: ${JSON.stringify(seen)}`);
  assert.ok(existsSync(cfg.exitFile));
});

test('attach with stdin: cat echoes back, stdin EOF ends it', async () => {
  const cfg = setup(['cat'], { stdin: true });
  await start(cfg);
  const client = await ShimClient.connect(cfg.socket);
  const stdin = new PassThrough();
  const out = new Sink();
  let attachedInfo: { stdin: boolean } | undefined;
  const done = client.attach({ stdin, stdout: out, stderr: out, onAttached: (i) => { attachedInfo = i; stdin.write('hello shim\n'); } });
  for (let i = 0; i < 200 && !out.text.includes('hello shim'); i++) await sleep(10);
  assert.equal(out.text, 'hello shim\n');
  assert.equal(attachedInfo?.stdin, true);
  // a second attacher sees the output but does not get stdin
  const second = await ShimClient.connect(cfg.socket);
  const out2 = new Sink();
  let info2: { stdin: boolean } | undefined;
  const done2 = second.attach({ stdin: new PassThrough(), stdout: out2, onAttached: (i) => { info2 = i; } });
  for (let i = 0; i < 200 && !info2; i++) await sleep(10);
  assert.equal(info2?.stdin, false);
  stdin.write('again\n');
  for (let i = 0; i < 200 && !out2.text.includes('again'); i++) await sleep(10);
  assert.equal(out2.text, 'again\n', 'output from before this attach went only to the log');
  stdin.end();
  const exit = await done;
  assert.equal(exit.exitCode, 0);
  assert.equal((await done2).exitCode, 0);
  assert.deepEqual(logEntries(cfg).map((e) => e.log), ['hello shim\n', 'again\n']);
  client.close();
  second.close();
});

test('deferStart: attach before start sees the very first output', async () => {
  const cfg = setup(['sh', '-c', 'echo first; exit 5'], { deferStart: true });
  const { shimPid, initPid } = await start(cfg);
  assert.ok(initPid > 0, 'created: the init exists');
  const client = await ShimClient.connect(cfg.socket);
  assert.equal((await client.status()).state, 'created');
  const out = new Sink();
  const attached = new Promise<void>((resolve) => {
    void client.attach({ stdout: out, onAttached: () => resolve() }).then((e) => { exitSeen = e; });
  });
  let exitSeen: ExitStatus | undefined;
  await attached;
  const started = await client.start();
  assert.equal(started.initPid, initPid);
  assert.equal((await waitExit(cfg)).exitCode, 5);
  for (let i = 0; i < 100 && !exitSeen; i++) await sleep(10);
  assert.equal(out.text, 'first\n');
  assert.equal(exitSeen?.exitCode, 5);
  client.close();
  await assertNothingLeft(cfg, shimPid);
});

test('deferStart: a created container that is killed instead of started is removed', async () => {
  for (const runc of [false, true]) {
    const cfg = setup(['sh', '-c', 'echo never'], { deferStart: true, runc });
    const { shimPid } = await start(cfg);
    const client = await ShimClient.connect(cfg.socket);
    await client.kill('SIGTERM');
    const exit = await waitExit(cfg);
    assert.equal(exit.exitCode, 137);
    assert.equal(exit.startedAt, '0001-01-01T00:00:00Z');
    assert.equal(readFileSync(cfg.log.path, 'utf8'), '');
    client.close();
    await assertNothingLeft(cfg, shimPid);
  }
});

test('tty: the container sees a pty, output is stdout, resize reaches it', async () => {
  const cfg = setup(['sh', '-c', 'tty; sleep 0.5; stty size'], { tty: true, deferStart: true });
  await start(cfg);
  const client = await ShimClient.connect(cfg.socket);
  await client.resizeChecked(123, 45); // before start: the init already holds the pty
  const out = new Sink();
  const attached = new Promise<void>((resolve) => { void client.attach({ stdout: out, stderr: out, onAttached: () => resolve() }); });
  await attached;
  await client.start();
  await sleep(150);
  client.resize(100, 40); // over the attach connection
  assert.equal((await waitExit(cfg)).exitCode, 0);
  const text = logEntries(cfg).map((e) => e.log).join('');
  assert.match(text, /^\/dev\/pts\/\d+\r\n/);
  assert.match(text, /40 100\r\n/, 'the resize while running was seen');
  assert.ok(logEntries(cfg).every((e) => e.stream === 'stdout'));
  for (let i = 0; i < 100 && !out.text.includes('40 100'); i++) await sleep(10);
  assert.match(out.text, /\/dev\/pts\/\d+/);
  client.close();
});

test('tty with stdin: an interactive shell', async () => {
  const cfg = setup(['sh'], { tty: true, stdin: true });
  await start(cfg);
  const client = await ShimClient.connect(cfg.socket);
  const stdin = new PassThrough();
  const out = new Sink();
  const done = client.attach({ stdin, stdout: out, onAttached: () => { stdin.write('echo $((6*7))\n'); stdin.write('exit 3\n'); } });
  const exit = await done;
  assert.equal(exit.exitCode, 3);
  assert.match(out.text, /\r\n42\r\n/, 'the pty echoes input and the shell answers');
  client.close();
});

test('a start failure rejects with one line and leaves nothing', async () => {
  const cfg = setup(['/nonexistent/program']);
  const err = await spawnShim(cfg, { script: SCRIPT }).then(() => undefined, (e: Error) => e);
  assert.ok(err, 'spawnShim rejected');
  assert.match(err.message, /nonexistent/);
  assert.ok(!err.message.includes('\n'), 'one line');
  await assertNothingLeft(cfg);
  assert.ok(!existsSync(cfg.exitFile), 'no exit file for a container that never ran');
  assert.ok(!existsSync(cfg.log.path) || readFileSync(cfg.log.path, 'utf8') === '', 'empty log');
});

test('the shim and its container survive the parent being killed with -9', async () => {
  const cfg = setup(['sh', '-c', 'echo up; sleep 1.5; echo down; exit 7']);
  const parentScript = join(top, 'parent.ts');
  writeFileSync(parentScript, [
    `import { spawnShim } from ${JSON.stringify(join(TOP, 'src/engine/shim/index.ts'))};`,
    `const r = await spawnShim(${JSON.stringify(cfg)}, { script: ${JSON.stringify(SCRIPT)} });`,
    `process.stdout.write(JSON.stringify(r) + '\\n');`,
    `setInterval(() => {}, 1000);`,
  ].join('\n'));
  const parent = spawn(process.execPath, [parentScript], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    parent.stdout.on('data', (d) => { buf += d; if (buf.includes('\n')) resolve(buf.trim()); });
    parent.on('exit', (c) => reject(new Error(`parent exited ${c}`)));
  });
  const { shimPid, initPid } = JSON.parse(line) as { shimPid: number; initPid: number };
  shimPids.push(shimPid);
  parent.kill('SIGKILL');
  await new Promise((r) => parent.once('exit', r));
  await sleep(200);
  assert.ok(alive(shimPid), 'shim alive after its parent died');
  assert.ok(alive(initPid), 'container alive');
  assert.ok(!existsSync(cfg.exitFile));
  // a new client (a restarted pierd) reconnects
  const c = await ShimClient.connect(cfg.socket);
  assert.equal((await c.status()).state, 'running');
  c.close();
  const exit = await waitExitFile(cfg);
  assert.equal(exit.exitCode, 7);
  assert.deepEqual(logEntries(cfg).map((e) => e.log), ['up\n', 'down\n']);
  await assertNothingLeft(cfg, shimPid);
});

test('the shim leaves right after its last client', async (t) => {
  const cfg = setup(['sh', '-c', 'sleep 0.3; exit 0']);
  const { shimPid } = await start(cfg);
  const c = await ShimClient.connect(cfg.socket);
  await c.wait();
  const t0 = performance.now();
  assert.ok(await gone(shimPid));
  const ms = performance.now() - t0;
  t.diagnostic(`shim gone ${ms.toFixed(1)} ms after its last client got the exit`);
  assert.ok(ms < 150, `shim gone ${ms.toFixed(0)} ms after the exit reached its client`);
  c.close();
  // a client connecting after the shim left reads the exit file instead
  await assert.rejects(ShimClient.connect(cfg.socket), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' || e.code === 'ECONNREFUSED');
  assert.equal(readExit(cfg.exitFile)?.exitCode, 0);
});

test('the socket directory vanishing does not stop the exit file', async () => {
  const cfg = setup(['sh', '-c', 'sleep 0.3; echo bye; exit 9']);
  cfg.socket = join(top, 'vanishing', 'x.sock');
  const { shimPid } = await start(cfg);
  rmSync(join(top, 'vanishing'), { recursive: true, force: true });
  const exit = await waitExitFile(cfg);
  assert.equal(exit.exitCode, 9);
  assert.deepEqual(logEntries(cfg).map((e) => e.log), ['bye\n']);
  await assertNothingLeft(cfg, shimPid);
});

test('SIGTERM to the shim is forwarded to the container', async () => {
  // pid 1 of a pid namespace ignores signals it has no handler for: give it one
  const cfg = setup(['sh', '-c', 'trap "echo term; exit 143" TERM; while :; do sleep 0.05; done']);
  const { shimPid } = await start(cfg);
  process.kill(shimPid, 'SIGHUP'); // ignored
  await sleep(100);
  assert.ok(alive(shimPid));
  process.kill(shimPid, 'SIGTERM');
  const exit = await waitExit(cfg);
  assert.equal(exit.exitCode, 143);
  assert.deepEqual(logEntries(cfg).map((e) => e.log), ['term\n']);
  await assertNothingLeft(cfg, shimPid);
});

test('external runtime (runc): run, output, exit code; failures; no tty', async () => {
  const cfg = setup(['sh', '-c', 'echo from runc; echo e >&2; exit 3'], { runc: true });
  const { shimPid, initPid } = await start(cfg);
  assert.ok(initPid > 0);
  const exit = await waitExit(cfg);
  assert.equal(exit.exitCode, 3);
  assert.equal(exit.error, undefined);
  assert.deepEqual(logEntries(cfg).map((e) => [e.stream, e.log]).sort(), [['stderr', 'e\n'], ['stdout', 'from runc\n']]);
  await assertNothingLeft(cfg, shimPid);

  const bad = setup(['/nonexistent/program'], { runc: true });
  const err = await spawnShim(bad, { script: SCRIPT }).then(() => undefined, (e: Error) => e);
  assert.match(err?.message ?? '', /nonexistent/);
  assert.ok(!err!.message.includes('\n'));
  await assertNothingLeft(bad);
  assert.ok(!existsSync(join(runcRoot, bad.id)));

  const tty = setup(['tty'], { runc: true, tty: true });
  await assert.rejects(spawnShim(tty, { script: SCRIPT }), /tty.*console socket/);
});

test('runc: attach with stdin', async () => {
  const cfg = setup(['cat'], { runc: true, stdin: true });
  await start(cfg);
  const client = await ShimClient.connect(cfg.socket);
  const stdin = new PassThrough();
  const out = new Sink();
  const done = client.attach({ stdin, stdout: out, onAttached: () => { stdin.end('via runc\n'); } });
  assert.equal((await done).exitCode, 0);
  assert.equal(out.text, 'via runc\n');
  client.close();
});

test('OOM: an 8 MiB limit and a bigger allocation → oomKilled, 137', async () => {
  const limit = 8 * 1024 * 1024;
  const cfg = setup(['sh', '-c', 'x=$(head -c 50000000 /dev/zero | tr "\\0" a); echo survived'], {
    spec: (s) => { s.linux!.resources = { ...s.linux!.resources, memory: { limit, swap: limit } }; },
  });
  const { shimPid } = await start(cfg);
  const exit = await waitExit(cfg);
  assert.equal(exit.oomKilled, true);
  assert.equal(exit.exitCode, 137);
  await assertNothingLeft(cfg, shimPid);

  const viaRunc = setup(['sh', '-c', 'x=$(head -c 50000000 /dev/zero | tr "\\0" a); echo survived'], {
    runc: true,
    spec: (s) => { s.linux!.resources = { ...s.linux!.resources, memory: { limit, swap: limit } }; },
  });
  await start(viaRunc);
  const e2 = await waitExit(viaRunc);
  assert.deepEqual([e2.exitCode, e2.oomKilled], [137, true], 'runc: the same');
});

test('shim host: several containers in one process; it retires when its spawner dies', async () => {
  const host = await startShimHost(join(top, 'shims', 'host-1.sock'), { script: SCRIPT });
  shimPids.push(host.pid);
  const a = setup(['sh', '-c', 'echo first; exit 4']);
  const b = setup(['sh', '-c', 'echo second; sleep 0.3; exit 5']);
  const [ra, rb] = await Promise.all([host.start(a), host.start(b)]);
  assert.equal(ra.shimPid, host.pid);
  assert.equal(rb.shimPid, host.pid);
  assert.equal((await waitExit(a)).exitCode, 4);
  assert.equal((await waitExit(b)).exitCode, 5);
  assert.deepEqual(logEntries(a).map((e) => e.log), ['first\n']);
  assert.deepEqual(logEntries(b).map((e) => e.log), ['second\n']);
  await assertNothingLeft(a);
  await assertNothingLeft(b);
  assert.ok(host.alive, 'the host stays for the next container');

  // a failed start through the host leaves nothing and the host keeps serving
  const bad = setup(['/nonexistent/program']);
  await assert.rejects(host.start(bad), /nonexistent/);
  await assertNothingLeft(bad);
  const c = setup(['true']);
  await host.start(c);
  assert.equal((await waitExit(c)).exitCode, 0);
  host.close();
  assert.ok(await gone(host.pid), 'an idle host exits when let go');

  // a host whose spawner is killed keeps its running container, then exits after it
  const parentScript = join(top, 'host-parent.ts');
  const d = setup(['sh', '-c', 'sleep 0.5; exit 6']);
  writeFileSync(parentScript, [
    `import { startShimHost } from ${JSON.stringify(join(TOP, 'src/engine/shim/index.ts'))};`,
    `const h = await startShimHost(${JSON.stringify(join(top, 'shims', 'host-2.sock'))}, { script: ${JSON.stringify(SCRIPT)} });`,
    `await h.start(${JSON.stringify(d)});`,
    `process.stdout.write(h.pid + '\\n');`,
    `setInterval(() => {}, 1000);`,
  ].join('\n'));
  const parent = spawn(process.execPath, [parentScript], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = Number(await new Promise<string>((resolve) => { let buf = ''; parent.stdout.on('data', (x) => { buf += x; if (buf.includes('\n')) resolve(buf); }); }));
  shimPids.push(pid);
  parent.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(alive(pid), 'the host lives on with its container');
  assert.equal((await waitExit(d)).exitCode, 6);
  assert.ok(await gone(pid), 'and exits after it');
  assert.ok(!existsSync(join(top, 'shims', 'host-2.sock')));
});

test('start latency: spawnShim and a shim host', async (t) => {
  const script = existsSync(BUNDLE) ? BUNDLE : SCRIPT;
  const runs = 5;
  const host = await startShimHost(join(top, 'shims', 'lat.sock'), { script });
  shimPids.push(host.pid);
  const measure = async (how: 'spawn' | 'host'): Promise<number[]> => {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const cfg = setup(['true']);
      const t0 = performance.now();
      if (how === 'spawn') {
        const r = await spawnShim(cfg, { script });
        shimPids.push(r.shimPid);
      } else {
        await host.start(cfg);
      }
      times.push(performance.now() - t0);
      await waitExit(cfg);
    }
    return times;
  };
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const spawned = await measure('spawn');
  const hosted = await measure('host');
  host.close();
  t.diagnostic(`${script === BUNDLE ? 'bundle' : 'sources'}: spawnShim → running median ${median(spawned).toFixed(1)} ms (${spawned.map((x) => x.toFixed(0)).join(' ')}); shim host start → running median ${median(hosted).toFixed(1)} ms (${hosted.map((x) => x.toFixed(0)).join(' ')})`);
  assert.ok(median(hosted) < median(spawned), 'a host saves the Node start-up');
});
