/**
 * The engine API's checks without a daemon: the schemas of api.ts against what the CLI really sends
 * and against bad values, docker's since/until forms, mount destinations, and the runtime table pierd
 * builds from daemon.json.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from '../../src/common/schema.ts';
import { CreateRequestSchema, NetworkCreateSchema, VolumeCreateSchema } from '../../src/engine/api.ts';
import { parseTime } from '../../src/engine/daemon/server.ts';
import { checkMountDestination, parseVolumeSpec } from '../../src/engine/daemon/mounts.ts';
import { DEFAULT_RUNTIME, Runtimes, loadRuntimes } from '../../src/engine/daemon/runtime.ts';
import { CREATE_FLAGS, requestFrom } from '../../src/cli/engine/create.ts';
import { parse } from '../../src/cli/engine/common.ts';

const create = compile(CreateRequestSchema);
const message = (fn: () => unknown): string => {
  try { fn(); } catch (err) { return (err as Error).message; }
  return '(accepted)';
};

test('every field the CLI sends, with every create flag, fits the schema', () => {
  const argv = [
    '-i', '-t', '--name', 'web', '-e', 'A=1', '-p', '127.0.0.1:8080:80/udp', '-p', '443', '-v', 'data:/data:ro', '-v', '/tmp:/host',
    '-v', '/anon', '-w', '/srv', '-u', '1000:1000', '--entrypoint', '/bin/sh', '--hostname', 'box', '--network', 'appnet',
    '--network-alias', 'api', '-m', '64m', '--cpus', '1.5', '--pids-limit', '100', '--restart', 'on-failure:3', '--read-only',
    '--cap-add', 'NET_ADMIN', '--cap-drop', 'ALL', '--init', '--rm', '--runtime', 'runc', '-l', 'k=v', '--log-opt', 'max-size=1m',
    '--log-opt', 'max-file=5', '--add-host', 'db:10.0.0.2', '--stop-signal', 'SIGQUIT', '--stop-timeout', '30',
    '--health-cmd', 'test -f /ok', '--health-interval', '1m30s', '--health-timeout', '500ms', '--health-retries', '2',
    '--health-start-period', '2s', '--health-start-interval', '1s',
    '--pod', 'web-pod', '--ipc', 'container:other', '--uts', 'private', '--pid', 'container:other',
    'busybox', 'echo', 'hi',
  ];
  const req = requestFrom(parse(argv, CREATE_FLAGS, 'create', true));
  assert.equal(req.pod, 'web-pod');
  assert.deepEqual([req.ipc, req.uts, req.pid], ['container:other', 'private', 'container:other']);
  assert.match(message(() => create.check({ image: 'x', ipc: 'host' })), /ipc: expected private or container:NAME/);
  assert.deepEqual(req.healthcheck, { Test: ['CMD-SHELL', 'test -f /ok'], Interval: 90e9, Timeout: 500e6, StartPeriod: 2e9, StartInterval: 1e9, Retries: 2 });
  assert.deepEqual(requestFrom(parse(['--no-healthcheck', 'busybox'], CREATE_FLAGS, 'create', true)).healthcheck, { Test: ['NONE'] });
  assert.deepEqual(create.check(JSON.parse(JSON.stringify(req))), JSON.parse(JSON.stringify(req)));
  // The smallest request the CLI sends (defaults everywhere) too.
  create.check(JSON.parse(JSON.stringify(requestFrom(parse(['busybox'], CREATE_FLAGS, 'create', true)))));
  // Fields the CLI sends that the test above must have covered: a new one shows up here.
  const sent = Object.keys(req).sort();
  const known = Object.keys(CreateRequestSchema.properties).sort();
  assert.deepEqual(sent.filter((k) => !known.includes(k)), []);
  assert.deepEqual(known.filter((k) => !sent.includes(k)), [], 'every schema field is exercised by some CLI flag');
});

test('bad create bodies are refused with one line naming the field', () => {
  const cases: [unknown, RegExp][] = [
    [{ image: 'busybox', cmd: 'notarray' }, /^container create: field cmd: expected array$/],
    [null, /^container create: expected object$/],
    [[], /^container create: expected object$/],
    [{}, /field image: expected an image reference/],
    [{ image: '' }, /field image/],
    [{ image: 'busybox', cmd: ['a\0b'] }, /field cmd\[0\]: expected a string without NUL bytes/],
    [{ image: 'busybox', env: ['=x'] }, /field env\[0\]: expected KEY=VALUE/],
    [{ image: 'busybox', workdir: 'rel' }, /field workdir: expected an absolute path/],
    [{ image: 'busybox', hostname: 'a'.repeat(65) }, /field hostname/],
    [{ image: 'busybox', hostname: 'a\nb' }, /field hostname/],
    [{ image: 'busybox', networkAliases: ['a b'] }, /field networkAliases\[0\]/],
    [{ image: 'busybox', extraHosts: ['db'] }, /field extraHosts\[0\]: expected HOST:IP/],
    [{ image: 'busybox', extraHosts: ['db:1.2.3'] }, /field extraHosts\[0\]/],
    [{ image: 'busybox', extraHosts: ['d b:1.2.3.4'] }, /field extraHosts\[0\]/],
    [{ image: 'busybox', ports: [{ hostPort: -1, containerPort: 80, protocol: 'tcp' }] }, /field ports\[0\]\.hostPort: expected a port number 0-65535/],
    [{ image: 'busybox', ports: [{ hostPort: 1, containerPort: 0, protocol: 'tcp' }] }, /field ports\[0\]\.containerPort/],
    [{ image: 'busybox', ports: [{ hostPort: 1, containerPort: 80, protocol: 'tcp', hostIp: '::1' }] }, /field ports\[0\]\.hostIp: expected an IPv4 address/],
    [{ image: 'busybox', ports: [{ hostPort: 1, containerPort: 80 }] }, /field ports\[0\]\.protocol/],
    [{ image: 'busybox', memory: 1024 }, /field memory: expected a byte count of at least 6291456/],
    [{ image: 'busybox', healthcheck: { Interval: -1 } }, /field healthcheck\.Interval: expected an interval in nanoseconds/],
    [{ image: 'busybox', healthcheck: { Test: 'true' } }, /field healthcheck\.Test/],
    [{ image: 'busybox', healthcheck: { Tset: ['CMD'] } }, /healthcheck/],
    [{ image: 'busybox', cpus: 0 }, /field cpus/],
    [{ image: 'busybox', pidsLimit: 0 }, /field pidsLimit/],
    [{ image: 'busybox', restart: { name: 'sometimes' } }, /field restart\.name: expected no, on-failure, always or unless-stopped/],
    [{ image: 'busybox', restart: { name: 'on-failure', maxRetries: -1 } }, /field restart\.maxRetries/],
    [{ image: 'busybox', log: { maxFiles: 0 } }, /field log\.maxFiles: expected an integer 1-1000/],
    [{ image: 'busybox', log: { maxFiles: 1001 } }, /field log\.maxFiles/],
    [{ image: 'busybox', log: { maxSize: 65535 } }, /field log\.maxSize: expected a byte count of at least 65536/],
    [{ image: 'busybox', log: { driver: 'syslog' } }, /unknown field log\.driver/],
    [{ image: 'busybox', labels: { a: null } }, /field labels\.a: expected string/],
    [{ image: 'busybox', stopTimeout: 1.5 }, /field stopTimeout/],
    [{ image: 'busybox', stopTimeout: 2_147_484 }, /field stopTimeout: expected whole seconds 0-2147483/],
    [{ image: 'busybox', tty: 'yes' }, /field tty: expected boolean/],
    [{ image: 'busybox', runtime: '' }, /field runtime/],
  ];
  for (const [body, re] of cases) {
    const m = message(() => create.check(body, 'container create'));
    assert.match(m, re, JSON.stringify(body));
    assert.ok(!m.includes('\n'), m);
  }
  // And what is fine is fine: IPv6 extra hosts, host-gateway, hostPort 0.
  create.check({ image: 'busybox', extraHosts: ['db:::1', 'gw:host-gateway', 'v6:[fe80::1]'], ports: [{ hostPort: 0, containerPort: 1, protocol: 'udp' }], log: { maxSize: 65536, maxFiles: 1 } });
});

test('network and volume bodies', () => {
  const net = compile(NetworkCreateSchema);
  const vol = compile(VolumeCreateSchema);
  net.check({ name: 'n', subnet: '10.1.0.0/24', gateway: '10.1.0.1', internal: true, labels: { a: 'b' } });
  assert.match(message(() => net.check({}, 'network create')), /network create: field name/);
  assert.match(message(() => net.check({ name: 'n', gateway: '10.1.0' }, 'network create')), /field gateway: expected an IPv4 address/);
  vol.check({});
  vol.check({ name: 'v', labels: {} });
  assert.match(message(() => vol.check({ name: 'v', driver: 'nfs' }, 'volume create')), /unknown field driver/);
});

test('since/until take docker\'s forms and nothing else', () => {
  const now = Date.UTC(2024, 4, 1, 12, 0, 0);
  const iso = (v: string) => parseTime(v, now)?.toISOString();
  assert.equal(iso('1700000000'), '2023-11-14T22:13:20.000Z');
  assert.equal(iso('1700000000.25'), '2023-11-14T22:13:20.250Z');
  assert.equal(iso('0'), '1970-01-01T00:00:00.000Z');
  assert.equal(iso('10m'), '2024-05-01T11:50:00.000Z');
  assert.equal(iso('1h30m'), '2024-05-01T10:30:00.000Z');
  assert.equal(iso('1.5h'), '2024-05-01T10:30:00.000Z');
  assert.equal(iso('-10m'), '2024-05-01T12:10:00.000Z');
  assert.equal(iso('500ms'), '2024-05-01T11:59:59.500Z');
  assert.equal(iso('2024-05-01T10:00:00Z'), '2024-05-01T10:00:00.000Z');
  assert.equal(iso('2024-05-01T10:00:00.123456789Z'), '2024-05-01T10:00:00.123Z');
  assert.equal(iso('2024-05-01T10:00:00+02:00'), '2024-05-01T08:00:00.000Z');
  assert.equal(iso('2024-05-01T10:00:00-00:30'), '2024-05-01T10:30:00.000Z');
  assert.equal(iso('2024-02-29T00:00:00Z'), '2024-02-29T00:00:00.000Z');
  // Zone-less forms are local time, as docker reads them.
  assert.equal(parseTime('2024-05-01T10:00:00', now)?.getTime(), new Date(2024, 4, 1, 10, 0, 0).getTime());
  assert.equal(parseTime('2024-05-01', now)?.getTime(), new Date(2024, 4, 1).getTime());
  for (const bad of ['garbage', '', '10x', 'm', '1h-30m', '2024-13-01T00:00:00Z', '2023-02-29T00:00:00Z', '2024-05-01T24:00:00Z', '2024-05-01T10:60:00Z',
    '2024-05-01T10:00:00+25:00', '2024-05-01T10:00Z', '2024-5-1', '1e9', '0x10', '99999999999999h', ' 10m']) {
    assert.equal(parseTime(bad, now), undefined, JSON.stringify(bad));
  }
});

test('mounts over / or /proc are refused; neighbours are not', () => {
  for (const spec of ['/tmp:/proc', '/tmp:/proc/', '/tmp:/proc/sys:ro', 'vol:/proc/x', '/proc', '/proc/self', '/tmp:/', 'vol:/', '/tmp://proc', '/tmp:/./proc']) {
    assert.throws(() => parseVolumeSpec(spec), /invalid volume destination \/(proc)?\S* in ".*": (mounts over \/proc are not allowed|a mount cannot replace the container's root)$/, spec);
  }
  for (const spec of ['/tmp:/procfs', '/tmp:/proc2', '/tmp:/data/proc', 'vol:/srv/proc']) parseVolumeSpec(spec);
  assert.throws(() => checkMountDestination('/proc', '/data (a symlink in the image to /proc)'), /invalid volume destination \/data \(a symlink in the image to \/proc\): mounts over \/proc are not allowed$/);
});

test('runtimes: pier always, runc when found, daemon.json\'s by name; refusals name the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pier-runtimes-'));
  try {
    const fakeRunc = join(dir, 'runc');
    writeFileSync(fakeRunc, '#!/bin/sh\n', { mode: 0o755 });
    const none = loadRuntimes({ files: [join(dir, 'absent.json')], path: dir });
    assert.deepEqual(none.names(), [DEFAULT_RUNTIME, 'runc']);
    assert.deepEqual(none.find('runc'), { name: 'runc', path: fakeRunc }, 'PATH comes before the sbin dirs');
    assert.deepEqual(none.find(undefined), { name: 'pier' });
    assert.deepEqual(none.find('pier'), { name: 'pier' });
    assert.deepEqual(none.find(fakeRunc), { name: 'runc', path: fakeRunc }, 'a configured path maps to its name');
    assert.equal(none.find('/bin/sh'), undefined);
    assert.equal(none.find('sh'), undefined);
    assert.match(message(() => none.get('/bin/sh')), /^runtime: unknown runtime "\/bin\/sh" \(known: pier, runc;/);

    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    writeFileSync(a, JSON.stringify({ runtimes: { kata: { path: '/opt/kata/kata-runtime' }, runc: { path: '/opt/runc' } } }), { mode: 0o644 });
    writeFileSync(b, JSON.stringify({ runtimes: { kata: { path: '/usr/bin/kata' } } }), { mode: 0o600 });
    const both = loadRuntimes({ files: [a, b], path: dir });
    assert.deepEqual(both.names(), ['pier', 'runc', 'kata']);
    assert.equal(both.find('runc')?.path, '/opt/runc', 'daemon.json may say where runc is');
    assert.equal(both.find('kata')?.path, '/usr/bin/kata', 'the later file wins');

    const refuse = (text: string, re: RegExp, mode = 0o600) => {
      writeFileSync(a, text);
      chmodSync(a, mode);
      assert.match(message(() => loadRuntimes({ files: [a], path: dir })), re);
    };
    refuse('{', new RegExp(`^${a}: not valid JSON`));
    refuse('[]', new RegExp(`^${a}: expected object`));
    refuse(JSON.stringify({ runtimes: { x: { path: 'relative' } } }), new RegExp(`^${a}: field runtimes\\.x\\.path: expected an absolute path$`));
    refuse(JSON.stringify({ runtimes: { x: { path: '/bin/x', runtimeArgs: ['--debug'] } } }), /unknown field runtimes\.x\.runtimeArgs/);
    refuse(JSON.stringify({ 'default-runtime': 'runc' }), /unknown field default-runtime/);
    refuse(JSON.stringify({ runtimes: { pier: { path: '/bin/x' } } }), /runtime name "pier" is the built-in runtime's/);
    refuse(JSON.stringify({ runtimes: { 'a b': { path: '/bin/x' } } }), /runtime name "a b"/);
    refuse(JSON.stringify({ runtimes: {} }), /not be writable by group or others/, 0o666);
    assert.deepEqual(new Runtimes().names(), ['pier']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
