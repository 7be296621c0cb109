/**
 * `pier build`'s RUN network, written as the attack: a Containerfile that tries to reach a service
 * listening only on the host's loopback. By default a RUN step has a network namespace of its own on
 * pierd's default bridge network (egress works: a server on the host's other addresses answers;
 * the loopback one never sees a request); `--network host` shares the host's; `--network none` has
 * only `lo`. Every sandbox is gone when the build ends, also when `pier build` is killed with
 * SIGKILL in the middle of a RUN, and those of a pierd killed with -9 when the next one starts.
 * Runs against an isolated test engine (its own bridge and subnet).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PIER, bridgePorts, iptablesRules, testEngine, until, type TestEngine } from '../helpers/engine.ts';
import { EngineClient, enginePaths } from '../../src/engine/index.ts';

const skip = process.getuid?.() === 0 && existsSync('/bin/busybox') ? false : 'needs root and /bin/busybox (busybox-static)';

let e: TestEngine;
let work = '';
let gateway = '';
const servers: Server[] = [];
/** requests each server saw */
const hits = { loopback: 0, gateway: 0 };
let loopbackPort = 0;
let anyPort = 0;

async function serve(host: string, count: () => void): Promise<number> {
  const s = createServer((_req, res) => { count(); res.end('answer\n'); });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, host, r));
  return (s.address() as AddressInfo).port;
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'pier-build-net-'));
  e = testEngine();
  loopbackPort = await serve('127.0.0.1', () => { hits.loopback++; });
  anyPort = await serve('0.0.0.0', () => { hits.gateway++; });
  gateway = JSON.parse(e.ok(['network', 'inspect', 'bridge']))[0].gateway;
  assert.match(gateway, /^\d+\.\d+\.\d+\.\d+$/);
});

after(async () => {
  for (const s of servers) s.close();
  if (e) await e.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A context whose one RUN reports its network and tries both servers; `extra` goes last. */
function context(name: string, extra = ''): string {
  const dir = join(work, name);
  const run = [
    'echo "NETNS=$(readlink /proc/self/ns/net)"',
    'echo "IFACES=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort | tr "\\n" " ")"',
    'echo "SYSNET=$(ls /sys/class/net | sort | tr "\\n" " ")"',
    'echo "RESOLV=$(grep nameserver /etc/resolv.conf | tr "\\n" " ")"',
    'echo "HOSTS=$(grep pier-build /etc/hosts)"',
    `timeout 5 wget -q -O - http://127.0.0.1:${loopbackPort}/ && touch /reached-loopback || true`,
    `timeout 5 wget -q -O - http://${gateway}:${anyPort}/ && touch /reached-gateway || true`,
  ].join('; ');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Containerfile'), `FROM busybox\nRUN ${run}\n${extra}`);
  return dir;
}

function field(out: string, key: string): string {
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(out);
  assert.ok(m, `no ${key}= line in the build output:\n${out}`);
  return m[1].trim();
}

/** Nothing of a build's sandbox is left: record, lease, veth, netns (by inode), iptables mention. */
function assertNoSandbox(netns: string, ip: string | undefined): void {
  const records = join(e.root, 'networks', 'sandboxes');
  assert.deepEqual(existsSync(records) ? readdirSync(records).filter((f) => f.endsWith('.json')) : [], [], 'sandbox records left');
  const ipam = join(e.root, 'networks', 'ipam');
  const leases = existsSync(ipam) ? readdirSync(ipam).flatMap((n) => readdirSync(join(ipam, n)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))) : [];
  assert.deepEqual(leases, [], 'leases left');
  assert.deepEqual(bridgePorts(e.bridge), [], 'veths left on the test bridge');
  const ino = /^net:\[(\d+)\]$/.exec(netns)?.[1];
  assert.ok(ino, `netns ${netns}`);
  const named = existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => { try { return String(statSync(join('/run/netns', n)).ino) === ino; } catch { return false; } }) : [];
  assert.deepEqual(named, [], 'the RUN\'s netns is still mounted');
  if (ip) assert.ok(!iptablesRules().some((r) => new RegExp(`(^|[^0-9.])${ip.replace(/\./g, '\\.')}([^0-9]|$)`).test(r)), `an iptables rule names ${ip}`);
}

async function buildOut(args: string[]): Promise<string> {
  const r = await e.pierAsync(['build', ...args], { timeout: 120_000 });
  assert.equal(r.status, 0, `pier build ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('default: a RUN step does not reach the host\'s loopback, but has egress through the bridge', { skip }, async () => {
  hits.loopback = 0; hits.gateway = 0;
  const out = await buildOut(['--no-cache', context('default')]);
  assert.equal(hits.loopback, 0, 'the server on the host\'s 127.0.0.1 was reached from a RUN step');
  assert.ok(hits.gateway >= 1, `the bridge gateway ${gateway}:${anyPort} was not reached (no egress):\n${out}`);
  // Its own namespace: lo and eth0 only, in /proc/net/dev and in a sysfs of its own.
  assert.equal(field(out, 'IFACES'), 'eth0 lo');
  assert.equal(field(out, 'SYSNET'), 'eth0 lo');
  // The sandbox's resolv.conf (no loopback resolver of the host) and hosts (its own address).
  const resolv = field(out, 'RESOLV');
  assert.match(resolv, /nameserver \S+/);
  assert.doesNotMatch(resolv, /nameserver 127\./);
  const hosts = field(out, 'HOSTS');
  const ip = /^(\d+\.\d+\.\d+\.\d+)\s+pier-build$/.exec(hosts)?.[1];
  assert.ok(ip, `hosts line ${JSON.stringify(hosts)}`);
  assert.notEqual(field(out, 'NETNS'), `net:[${statSync('/proc/self/ns/net').ino}]`, 'the RUN ran in the host\'s network namespace');
  assertNoSandbox(field(out, 'NETNS'), ip);
});

test('--network host shares the host\'s namespace: the loopback server is reached', { skip }, async () => {
  hits.loopback = 0;
  const out = await buildOut(['--no-cache', '--network', 'host', context('host')]);
  assert.ok(hits.loopback >= 1, `the host's loopback was not reached with --network host:\n${out}`);
  assert.equal(field(out, 'NETNS'), `net:[${statSync('/proc/self/ns/net').ino}]`);
});

test('--network none: only lo, nothing reached, no sandbox made', { skip }, async () => {
  hits.loopback = 0; hits.gateway = 0;
  const out = await buildOut(['--no-cache', '--network', 'none', context('none')]);
  assert.equal(hits.loopback, 0);
  assert.equal(hits.gateway, 0);
  assert.equal(field(out, 'IFACES'), 'lo');
  assert.equal(field(out, 'SYSNET'), 'lo');
  assertNoSandbox(field(out, 'NETNS'), undefined);
});

test('the network mode is not part of the cache key', { skip }, async () => {
  const ctx = join(work, 'cache');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'Containerfile'), `FROM busybox\nRUN echo ${process.pid} > /one\nRUN wc -c /one > /two\n`);
  const first = await buildOut(['-t', 'netcache:1', ctx]);
  assert.doesNotMatch(first, /Using cache/);
  for (const mode of ['none', 'host', 'default']) {
    const again = await buildOut(['-t', 'netcache:1', '--network', mode, ctx]);
    assert.equal(again.match(/---> Using cache/g)?.length, 2, `--network ${mode}: both RUN steps are cache hits:\n${again}`);
  }
});

test('--network with another value is refused in one line', { skip }, async () => {
  const r = await e.pierAsync(['build', '--network', 'bogus', context('bogus')]);
  assert.notEqual(r.status, 0);
  assert.equal(r.stderr, 'pier: build: --network must be default, none or host, not "bogus"\n');
});

/** Host pids whose command line is exactly `args`. */
function pidsRunning(args: string[]): number[] {
  const want = args.join('\0') + '\0';
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try { return readFileSync(`/proc/${d}/cmdline`, 'latin1') === want; } catch { return false; }
  }).map(Number);
}

test('pier build killed with SIGKILL during a RUN leaves no sandbox, and the RUN goes with it', { skip }, async () => {
  const dir = join(work, 'killed');
  mkdirSync(dir, { recursive: true });
  // A sleep of a length no other test uses, to find it among the host's processes.
  const sleep = ['sleep', String(3000 + (process.pid % 997))];
  writeFileSync(join(dir, 'Containerfile'), `FROM busybox\nRUN echo "NETNS=$(readlink /proc/self/ns/net)"; echo ready-$((6*7)); ${sleep.join(' ')}\n`);
  const child = spawn(PIER, ['build', '--no-cache', dir], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d; });
  child.stderr.on('data', (d: Buffer) => { out += d; });
  // 'exit', not 'close': a RUN that outlived the CLI would hold its stdout open.
  const exited = new Promise((r) => child.on('exit', r));
  try {
    try {
      await until(() => /^ready-42$/m.test(out), 'the RUN step to run', 60_000);
      assert.equal(pidsRunning(sleep).length, 1, 'the RUN is running');
      assert.equal(JSON.parse(e.ok(['network', 'inspect', 'bridge']))[0].containers.length, 1, 'a sandbox is lent while the RUN runs');
    } finally {
      child.kill('SIGKILL');
      await exited;
      child.stdout.destroy();
      child.stderr.destroy();
    }
    const netns = field(out, 'NETNS');
    await until(() => {
      try { assertNoSandbox(netns, undefined); return true; } catch { return false; }
    }, 'the killed build\'s sandbox to be torn down');
    assertNoSandbox(netns, undefined);
    await until(() => pidsRunning(sleep).length === 0, 'the killed build\'s RUN to end');
  } finally {
    // Should the RUN have outlived its build (the bug), it must not outlive the test.
    for (const pid of pidsRunning(sleep)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
  // The next build sweeps the killed one's container state, mounts and temp files.
  await buildOut(['--network', 'none', context('after-kill')]);
  const pid = String(child.pid);
  for (const d of ['build-runtime', 'images/mounts', 'images/build-tmp']) {
    const p = join(e.root, d);
    const left = existsSync(p) ? readdirSync(p).filter((n) => n.includes(`-${pid}-`)) : [];
    assert.deepEqual(left, [], `${d}: left by the killed build`);
  }
});

test('a sandbox pierd lent before it was killed is torn down when pierd starts again', { skip }, async () => {
  const client = new EngineClient({ paths: enginePaths({ root: e.root, run: e.run }), autoStart: false });
  const sb = await client.buildSandbox('pier-build');
  const records = () => readdirSync(join(e.root, 'networks', 'sandboxes')).filter((f) => f.endsWith('.json'));
  try {
    assert.ok(existsSync(sb.netnsPath));
    const pid = e.daemonPid()!;
    process.kill(pid, 'SIGKILL');
    await until(() => sb.lost() !== undefined, 'the client to see pierd go');
    assert.equal(records().length, 1, 'the record outlives a killed pierd');
    e.ok(['network', 'ls']);   // starts pierd again
    await until(() => records().length === 0 && !existsSync(sb.netnsPath), 'the new pierd to reap the sandbox');
    assert.deepEqual(bridgePorts(e.bridge), []);
  } finally {
    await sb.release();
  }
});
