/**
 * src/engine/network on the real kernel: networks, sandboxes through Debian's CNI plugins, published
 * ports, name resolution, undo of failed setups, teardown from a new process, concurrency.
 * Uses its own default bridge (piert0, 10.86.0.0/16) and 10.85.x.0/24 subnets, so a real pierd on
 * the host (pier0, 10.87.0.0/16) is untouched.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetworkManager, type Sandbox } from '../../src/engine/network/index.ts';

const BRIDGE = 'piert0';
const SUBNET = '10.86.0.0/16';
const MANAGER = join(import.meta.dirname, '..', '..', 'src', 'engine', 'network', 'index.ts');

let root: string;
let m: NetworkManager;

function newManager(): NetworkManager {
  return new NetworkManager({ root, run: join(root, 'run'), defaultBridge: BRIDGE, defaultSubnet: SUBNET });
}

function sh(cmd: string, args: string[]): { status: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status ?? 1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

const newId = () => randomBytes(32).toString('hex');
const ns = (id: string) => `pier-${id.slice(0, 12)}`;
const iptablesSave = () => sh('iptables-save', []).out;
const vethsOn = (bridge: string) => sh('ip', ['-o', 'link', 'show', 'master', bridge]).out.split('\n').filter((l) => l.includes('veth')).length;
const ipRe = (ip: string) => new RegExp(`(^|[^0-9.])${ip.replace(/\./g, '\\.')}([^0-9]|$)`, 'm');

function hostAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('10.8')) return a.address;
  }
  throw new Error('no host address');
}

/** Nothing of a torn-down sandbox remains: netns, record, lease, iptables mention. */
function assertGone(s: Sandbox): void {
  assert.ok(!existsSync(`/run/netns/${ns(s.containerId)}`), 'netns left');
  assert.ok(!existsSync(join(root, 'networks', 'sandboxes', `${s.containerId}.json`)), 'record left');
  const rules = iptablesSave();
  assert.ok(!rules.includes(s.containerId), 'iptables rule naming the container left');
  for (const a of s.attachments) {
    assert.ok(!existsSync(join(root, 'networks', 'ipam', a.network, a.ip)), `lease ${a.ip} left`);
    assert.ok(!ipRe(a.ip).test(rules), `iptables rule naming ${a.ip} left`);
  }
}

/** The reply of a TCP server: it sends one line and closes. */
function tcpRead(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect({ host, port });
    let data = '';
    const timer = setTimeout(() => { c.destroy(); reject(new Error(`no answer from ${host}:${port}`)); }, 3000);
    c.on('data', (d) => { data += d; });
    c.on('end', () => { clearTimeout(timer); resolve(data); });
    c.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** A node TCP server inside a netns answering "hello <tag>". */
async function serveIn(netns: string, port: number, tag: string): Promise<() => void> {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e',
    `require('net').createServer(s => s.end('hello ${tag}')).listen(${port}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => { if (String(d).includes('up')) resolve(); });
    child.on('exit', (code) => reject(new Error(`server in ${netns} exited ${code}`)));
  });
  child.removeAllListeners('exit');
  return () => { child.kill('SIGKILL'); };
}

/** Asynchronous: the DNS server answering lives in this very process. */
function nslookup(netns: string, name: string, server: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, 'busybox', 'nslookup', name, server], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('close', () => resolve(out));
  });
}

const freePort = () => 20000 + Math.floor(Math.random() * 10000);

before(() => {
  root = mkdtempSync(join(tmpdir(), 'pier-net-'));
  m = newManager();
});

after(async () => {
  await m.close();
  // Whatever a failed test left: its sandboxes (from their records), then its networks.
  const last = newManager();
  for (const f of readdirSync(join(root, 'networks', 'sandboxes'))) {
    if (f.endsWith('.json')) await last.teardown(f.slice(0, -5)).catch(() => {});
  }
  for (const n of last.list()) if (n.name !== 'bridge') { try { last.remove(n.id); } catch { /* reported by its test */ } }
  await last.close();
  sh('ip', ['link', 'del', BRIDGE]);
  for (const line of sh('iptables', ['-t', 'nat', '-S', 'POSTROUTING']).out.split('\n')) {
    if (line.includes(SUBNET) && line.includes('pier network')) sh('sh', ['-c', `iptables -t nat ${line.replace(/^-A/, '-D')}`]);
  }
  rmSync(root, { recursive: true, force: true });
});

test('networks: create, list, inspect, remove, and bad input', () => {
  const def = m.ensureDefault();
  assert.equal(def.name, 'bridge');
  assert.equal(def.bridge, BRIDGE);
  assert.equal(def.subnet, SUBNET);
  assert.equal(def.gateway, '10.86.0.1');
  assert.equal(def.dns, false);
  assert.match(def.id, /^[0-9a-f]{64}$/);

  for (const bad of ['', '-x', 'a b', 'a/b', '.hidden']) assert.throws(() => m.create(bad), /^PierError: invalid network name/);
  const a = m.create('tn-a', { subnet: '10.85.1.0/24', labels: { team: 'x' } });
  assert.equal(a.gateway, '10.85.1.1');
  assert.equal(a.bridge, `br-${a.id.slice(0, 12)}`);
  assert.equal(a.dns, true);
  assert.deepEqual(a.labels, { team: 'x' });
  assert.throws(() => m.create('tn-a'), { message: 'network "tn-a" already exists' });
  assert.throws(() => m.create('bridge'), { message: 'network "bridge" already exists' });
  assert.throws(() => m.create('host'), { message: 'network "host" already exists' });
  assert.throws(() => m.create('tn-b', { subnet: '10.0.0.0/33' }), { message: 'invalid subnet "10.0.0.0/33"' });
  assert.throws(() => m.create('tn-b', { subnet: '10.85.9.1/24' }), { message: 'invalid subnet "10.85.9.1/24": did you mean 10.85.9.0/24?' });
  assert.throws(() => m.create('tn-b', { subnet: 'fd00::/64' }), /only IPv4/);
  assert.throws(() => m.create('tn-b', { subnet: '10.85.1.128/25' }), { message: 'subnet 10.85.1.128/25 overlaps network "tn-a" (10.85.1.0/24)' });
  assert.throws(() => m.create('tn-b', { subnet: '10.86.5.0/24' }), /overlaps network "bridge"/);
  assert.throws(() => m.create('tn-b', { subnet: '10.85.2.0/24', gateway: '10.85.3.1' }), { message: 'gateway 10.85.3.1 is not in subnet 10.85.2.0/24' });
  const auto = m.create('tn-auto');
  assert.match(auto.subnet, /^10\.(89|9\d|1\d\d|2\d\d)\.\d+\.0\/24$/);
  assert.ok(m.list().every((n) => n.id === auto.id || n.subnet !== auto.subnet));

  assert.deepEqual(m.list().map((n) => n.name), ['bridge', 'tn-a', 'tn-auto']);
  assert.equal(m.inspect('tn-a').id, a.id);
  assert.equal(m.inspect(a.id).name, 'tn-a');
  assert.equal(m.inspect(a.id.slice(0, 10)).name, 'tn-a');
  assert.deepEqual(m.inspect('tn-a').containers, []);
  assert.throws(() => m.inspect('nope'), { message: 'network "nope" not found' });
  assert.equal(newManager().inspect('tn-a').subnet, '10.85.1.0/24', 'persisted');

  for (const p of ['bridge', 'none', 'host']) assert.throws(() => m.remove(p), /pre-defined network and cannot be removed/);
  m.remove(auto.id.slice(0, 12));
  m.remove('tn-a');
  assert.throws(() => m.inspect('tn-a'), { message: 'network "tn-a" not found' });
  assert.throws(() => m.remove('tn-a'), { message: 'network "tn-a" not found' });
  assert.deepEqual(readdirSync(join(root, 'networks', 'configs')).length, 1);
});

test('two containers on a user network: ping by IP, DNS by name/alias/short id, hosts and resolv.conf', { timeout: 120_000 }, async () => {
  const net = m.create('tn-dns', { subnet: '10.85.2.0/24' });
  const webId = newId(), cliId = newId();
  const web = await m.setup({ containerId: webId, name: 'web', hostname: 'webhost', mode: 'bridge', networks: [{ name: 'tn-dns', aliases: ['www'] }], ports: [] });
  const cli = await m.setup({ containerId: cliId, name: 'client', hostname: 'cli', mode: 'bridge', networks: [{ name: 'tn-dns' }], ports: [] });
  try {
    assert.equal(web.netnsPath, `/run/netns/${ns(webId)}`);
    const webAtt = web.attachments[0];
    assert.equal(webAtt.network, 'tn-dns');
    assert.equal(webAtt.networkId, net.id);
    assert.equal(webAtt.ifname, 'eth0');
    assert.equal(webAtt.prefixLength, 24);
    assert.equal(webAtt.gateway, '10.85.2.1');
    assert.match(webAtt.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    assert.deepEqual(webAtt.aliases, ['www']);
    assert.match(webAtt.ip, /^10\.85\.2\.\d+$/);
    assert.match(web.hosts, /^127\.0\.0\.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n/);
    assert.ok(web.hosts.includes(`${webAtt.ip}\twebhost\n`));
    assert.match(web.resolvConf, /^nameserver 10\.85\.2\.1\n/);
    assert.deepEqual(m.sandbox(webId), web);
    assert.deepEqual(m.inspect('tn-dns').containers.map((c) => c.name).sort(), ['client', 'web']);

    const ping = sh('ip', ['netns', 'exec', ns(cliId), 'busybox', 'ping', '-c1', '-W1', webAtt.ip]);
    assert.equal(ping.status, 0, ping.out);
    assert.equal(sh('ip', ['netns', 'exec', ns(cliId), 'busybox', 'ping', '-c1', '-W1', '10.85.2.1']).status, 0, 'gateway reachable');
    for (const name of ['web', 'www', 'WEB', webId.slice(0, 12), 'web.tn-dns']) {
      const out = await nslookup(ns(cliId), name, '10.85.2.1');
      assert.ok(ipRe(webAtt.ip).test(out.split(/Name:/i)[1] ?? ''), `${name} → ${webAtt.ip}:\n${out}`);
    }
    assert.ok(iptablesSave().includes('pier network tn-dns'), 'one masquerade rule for the network');
    assert.throws(() => m.remove('tn-dns'), { message: 'network "tn-dns" has active endpoints: web, client' });
    await m.teardown(webId);
    assert.doesNotMatch((await nslookup(ns(cliId), 'web', '10.85.2.1')).split(/Name:/i)[1] ?? '', ipRe(wa(web)), 'gone from DNS');
  } finally {
    await m.teardown(webId);
    await m.teardown(cliId);
  }
  assertGone(web);
  assertGone(cli);
  assert.equal(vethsOn(net.bridge), 0);
  m.remove('tn-dns');
  assert.ok(!existsSync(`/sys/class/net/${net.bridge}`), 'bridge removed with the network');
  assert.ok(!iptablesSave().includes('pier network tn-dns'), 'masquerade rule removed with the network');
  assert.ok(!existsSync(join(root, 'networks', 'ipam', 'tn-dns')), 'leases dir removed');
});

function wa(s: Sandbox): string { return s.attachments[0].ip; }

test('default network: no name resolution, host resolvers; modes none and host', { timeout: 120_000 }, async () => {
  const id = newId();
  const s = await m.setup({ containerId: id, name: 'plain', hostname: 'plain', mode: 'bridge', networks: [], ports: [], extraHosts: ['db:10.1.2.3', 'gw:host-gateway'] });
  try {
    assert.equal(s.attachments[0].network, 'bridge');
    assert.match(wa(s), /^10\.86\.\d+\.\d+$/);
    const hostNs = readFileSync('/etc/resolv.conf', 'utf8').split('\n').filter((l) => /^nameserver\s+(?!127\.|::1)/.test(l)).map((l) => l.trim().split(/\s+/)[1]);
    const got = s.resolvConf.split('\n').filter((l) => l.startsWith('nameserver')).map((l) => l.split(' ')[1]);
    assert.deepEqual(got, hostNs.length ? hostNs : ['8.8.8.8', '8.8.4.4']);
    assert.ok(s.hosts.includes('10.1.2.3\tdb\n') && s.hosts.includes('10.86.0.1\tgw\n'), s.hosts);
    assert.equal(sh('ip', ['netns', 'exec', ns(id), 'busybox', 'ping', '-c1', '-W1', '10.86.0.1']).status, 0);
  } finally {
    await m.teardown(id);
  }
  assertGone(s);

  const noneId = newId();
  const none = await m.setup({ containerId: noneId, name: 'n', hostname: 'n', mode: 'none', networks: [], ports: [] });
  const links = sh('ip', ['-n', ns(noneId), '-o', 'link']).out.trim().split('\n');
  assert.equal(links.length, 1);
  assert.match(links[0], /^1: lo: <LOOPBACK,UP,LOWER_UP>/);
  assert.deepEqual(none.attachments, []);
  await m.teardown(noneId);
  assertGone(none);

  const hostId = newId();
  const host = await m.setup({ containerId: hostId, name: 'h', hostname: 'h', mode: 'host', networks: [], ports: [], extraHosts: ['x:10.9.9.9'] });
  assert.equal(host.netnsPath, undefined);
  assert.ok(host.hosts.startsWith(readFileSync('/etc/hosts', 'utf8').trimEnd()) && host.hosts.endsWith('10.9.9.9\tx\n'));
  assert.equal(host.resolvConf, readFileSync('/etc/resolv.conf', 'utf8'));
  await m.teardown(hostId);
  assert.equal(m.sandbox(hostId), undefined);
  await m.teardown(hostId); // idempotent
});

test('published ports: reachable on 127.0.0.1 and the host address; clashes refused; nothing left', { timeout: 120_000 }, async () => {
  const port = freePort();
  const id = newId();
  const s = await m.setup({ containerId: id, name: 'pub', hostname: 'pub', mode: 'bridge', networks: [], ports: [{ hostPort: port, containerPort: 8080, protocol: 'tcp' }, { hostPort: 0, containerPort: 9090, protocol: 'tcp' }] });
  const stop = await serveIn(ns(id), 8080, 'pub');
  try {
    assert.equal(s.ports[0].hostPort, port);
    assert.ok(s.ports[1].hostPort > 1024, 'hostPort 0 got a port');
    assert.equal(await tcpRead('127.0.0.1', port), 'hello pub');
    assert.equal(await tcpRead(hostAddress(), port), 'hello pub');
    assert.throws(() => m.checkPorts([{ hostPort: port, containerPort: 1, protocol: 'tcp' }]), { message: `port ${port}/tcp is already allocated` });
    m.checkPorts([{ hostPort: port, containerPort: 1, protocol: 'udp' }]);
    await assert.rejects(m.setup({ containerId: newId(), name: 'dup', hostname: 'dup', mode: 'bridge', networks: [], ports: [{ hostPort: port, containerPort: 1, protocol: 'tcp' }] }),
      { message: `port ${port}/tcp is already allocated` });
  } finally {
    stop();
    await m.teardown(id);
  }
  assertGone(s);
  m.checkPorts([{ hostPort: port, containerPort: 1, protocol: 'tcp' }]);

  // A host listener holds its port.
  const srv: Server = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const taken = (srv.address() as { port: number }).port;
  try {
    assert.throws(() => m.checkPorts([{ hostPort: taken, containerPort: 1, protocol: 'tcp' }]), { message: `bind 0.0.0.0:${taken}: address already in use` });
    const failId = newId();
    await assert.rejects(m.setup({ containerId: failId, name: 'f', hostname: 'f', mode: 'bridge', networks: [], ports: [{ hostPort: taken, containerPort: 1, protocol: 'tcp' }] }),
      { message: `bind 0.0.0.0:${taken}: address already in use` });
    assert.ok(!existsSync(`/run/netns/${ns(failId)}`));
    assert.equal(m.sandbox(failId), undefined);
  } finally {
    srv.close();
  }
  assert.equal(vethsOn(BRIDGE), 0);
});

test('a failure in the middle of setup leaves nothing behind', { timeout: 120_000 }, async () => {
  const ok = m.create('tn-ok', { subnet: '10.85.5.0/24' });
  const full = m.create('tn-full', { subnet: '10.85.4.0/30' });   // room for one container (.2)
  const firstId = newId();
  const first = await m.setup({ containerId: firstId, name: 'first', hostname: 'first', mode: 'bridge', networks: [{ name: 'tn-full' }], ports: [] });
  assert.equal(wa(first), '10.85.4.2');
  const leases = (n: string) => readdirSync(join(root, 'networks', 'ipam', n)).filter((f) => /^\d/.test(f));

  // Joins tn-ok (succeeds), then tn-full (no address left): the tn-ok attachment must be undone.
  const failId = newId();
  const port = freePort();
  await assert.rejects(m.setup({ containerId: failId, name: 'second', hostname: 'second', mode: 'bridge', networks: [{ name: 'tn-ok' }, { name: 'tn-full' }], ports: [{ hostPort: port, containerPort: 80, protocol: 'tcp' }] }),
    /^PierError: CNI bridge ADD on tn-full\/eth1: .*no IP addresses available/);
  assert.ok(!existsSync(`/run/netns/${ns(failId)}`), 'netns left');
  assert.equal(m.sandbox(failId), undefined);
  assert.ok(!existsSync(join(root, 'networks', 'sandboxes', `${failId}.json`)));
  assert.deepEqual(leases('tn-ok'), []);
  assert.deepEqual(leases('tn-full'), ['10.85.4.2']);
  assert.equal(vethsOn(ok.bridge), 0);
  assert.equal(vethsOn(full.bridge), 1);
  assert.ok(!iptablesSave().includes(failId));
  m.checkPorts([{ hostPort: port, containerPort: 80, protocol: 'tcp' }]);   // released
  await m.teardown(firstId);
  assertGone(first);

  // A network whose stored bridge name the kernel cannot take: fails after the netns exists.
  const bad = m.create('tn-bad', { subnet: '10.85.6.0/24' });
  const file = join(root, 'networks', 'configs', `${bad.id}.json`);
  writeFileSync(file, JSON.stringify({ ...bad, bridge: 'much-too-long-name0' }));
  await m.close();
  m = newManager();
  const badId = newId();
  await assert.rejects(m.setup({ containerId: badId, name: 'b', hostname: 'b', mode: 'bridge', networks: [{ name: 'tn-bad' }], ports: [] }),
    { message: 'invalid bridge name "much-too-long-name0"' });
  assert.ok(!existsSync(`/run/netns/${ns(badId)}`));
  assert.equal(m.sandbox(badId), undefined);
  writeFileSync(file, JSON.stringify(bad));
  for (const n of ['tn-ok', 'tn-full', 'tn-bad']) m.remove(n);
});

test('teardown and restore from a new process after the first was kill -9ed', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pier-net-child-'));
  const ids = [newId(), newId(), newId()];
  const port = freePort();
  m.create('tn-r', { subnet: '10.85.3.0/24' });
  const script = join(dir, 'child.ts');
  writeFileSync(script, `
    import { NetworkManager } from ${JSON.stringify(MANAGER)};
    const m = new NetworkManager({ root: ${JSON.stringify(root)}, run: '/tmp', defaultBridge: ${JSON.stringify(BRIDGE)}, defaultSubnet: ${JSON.stringify(SUBNET)} });
    const ids = ${JSON.stringify(ids)};
    const out = [];
    out.push(await m.setup({ containerId: ids[0], name: 'alpha', hostname: 'alpha', mode: 'bridge', networks: [{ name: 'tn-r' }], ports: [] }));
    out.push(await m.setup({ containerId: ids[1], name: 'beta', hostname: 'beta', mode: 'bridge', networks: [{ name: 'tn-r' }], ports: [] }));
    out.push(await m.setup({ containerId: ids[2], name: 'gamma', hostname: 'gamma', mode: 'bridge', networks: [], ports: [{ hostPort: ${port}, containerPort: 80, protocol: 'tcp' }] }));
    console.log(JSON.stringify(out));
    setInterval(() => {}, 1000);
  `);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const sandboxes = await new Promise<Sandbox[]>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => { buf += d; if (buf.includes('\n')) resolve(JSON.parse(buf)); });
    child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
  child.removeAllListeners('exit');
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });

  await m.close();
  m = newManager();
  await m.restore();
  assert.deepEqual(m.sandbox(ids[0]), sandboxes[0]);
  assert.throws(() => m.checkPorts([{ hostPort: port, containerPort: 1, protocol: 'tcp' }]), /already allocated/, 'ports re-taken from disk');
  const out = await nslookup(ns(ids[1]), 'alpha', '10.85.3.1');
  assert.ok(ipRe(wa(sandboxes[0])).test(out.split(/Name:/i)[1] ?? ''), `DNS back after restore:\n${out}`);
  await Promise.all(ids.map((id) => m.teardown(id)));
  for (const s of sandboxes) assertGone(s);
  await m.teardown(ids[0]); // idempotent
  assert.equal(vethsOn(BRIDGE), 0);
  m.remove('tn-r');
});

test('restore undoes a sandbox a crash left half-made', { timeout: 120_000 }, async () => {
  const id = newId();
  const s = await m.setup({ containerId: id, name: 'half', hostname: 'half', mode: 'bridge', networks: [], ports: [] });
  // As if the daemon died right after the plugin's ADD, before it could record the result.
  const file = join(root, 'networks', 'sandboxes', `${id}.json`);
  const rec = JSON.parse(readFileSync(file, 'utf8'));
  rec.state = 'creating';
  for (const a of rec.attachments) { delete a.result; delete a.hostVeth; a.ip = ''; }
  writeFileSync(file, JSON.stringify(rec));
  await m.close();
  m = newManager();
  assert.equal(m.sandbox(id), undefined, 'not a usable sandbox');
  await m.restore();
  assertGone(s);
  assert.equal(vethsOn(BRIDGE), 0);
});

const N = Number(process.env.PIER_NET_CONCURRENCY ?? 20);

test(`${N} concurrent setups and teardowns`, { timeout: 120_000 }, async () => {
  const net = m.create('tn-many', { subnet: '10.85.8.0/22' });
  const ids = Array.from({ length: N }, newId);
  const sbs = await Promise.all(ids.map((id, i) => m.setup({ containerId: id, name: `c${i}`, hostname: `c${i}`, mode: 'bridge', networks: [{ name: i % 2 ? 'tn-many' : 'bridge' }], ports: [] })));
  assert.equal(new Set(sbs.map(wa)).size, N, 'distinct addresses');
  assert.equal(vethsOn(net.bridge) + vethsOn(BRIDGE), N);
  const last = sbs.find((s) => s.attachments[0].network === 'tn-many')!;
  const other = sbs.filter((s) => s.attachments[0].network === 'tn-many')[1];
  assert.equal(sh('ip', ['netns', 'exec', ns(last.containerId), 'busybox', 'ping', '-c1', '-W1', wa(other)]).status, 0);
  await Promise.all(ids.map((id) => m.teardown(id)));
  for (const s of sbs) assertGone(s);
  assert.equal(vethsOn(net.bridge) + vethsOn(BRIDGE), 0);
  assert.deepEqual(readdirSync('/run/netns').filter((n) => ids.some((id) => n === ns(id))), []);
  m.remove('tn-many');
});

test('latency of a default-network setup + teardown without ports', { timeout: 120_000 }, async (t) => {
  const setup: number[] = [], teardown: number[] = [];
  for (let i = 0; i < 15; i++) {
    const id = newId();
    let t0 = performance.now();
    await m.setup({ containerId: id, name: `l${i}`, hostname: 'l', mode: 'bridge', networks: [], ports: [] });
    setup.push(performance.now() - t0);
    t0 = performance.now();
    await m.teardown(id);
    teardown.push(performance.now() - t0);
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
  t.diagnostic(`setup median ${med(setup).toFixed(1)} ms (min ${Math.min(...setup).toFixed(1)}), teardown median ${med(teardown).toFixed(1)} ms (min ${Math.min(...teardown).toFixed(1)})`);
  assert.ok(med(setup) + med(teardown) < 500, 'far off the budget');
});
