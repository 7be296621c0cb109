/**
 * The pure parts of src/engine/network: subnet arithmetic, port clash rules, hosts/resolv.conf
 * content, the resolver's scoping, and the DNS server answering and forwarding on loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { cidrString, hostRoutes, overlaps, parseGateway, parseSubnet, pickSubnet, formatIpv4 } from '../../src/engine/network/ipam/subnets.ts';
import { normalizePorts, PortTable } from '../../src/engine/network/ports.ts';
import { copiedResolvConf, embeddedResolvConf, extraHostLines, sandboxHosts } from '../../src/engine/network/etc.ts';
import { lookupName, lookupAddress } from '../../src/engine/network/resolver.ts';
import { DnsServer } from '../../src/engine/network/dns/server.ts';
import { encodeName, parseQuery, RCODE_NOERROR, RCODE_NXDOMAIN, TYPE_A } from '../../src/engine/network/dns/wire.ts';
import type { NetworkConfig, SandboxRecord } from '../../src/engine/network/types.ts';

test('subnets: parse, refuse, overlap, pick', () => {
  assert.deepEqual(cidrString(parseSubnet('10.5.0.0/24')), '10.5.0.0/24');
  assert.throws(() => parseSubnet('10.0.0.0/33'), { message: 'invalid subnet "10.0.0.0/33"' });
  assert.throws(() => parseSubnet('10.5.0.1/24'), { message: 'invalid subnet "10.5.0.1/24": did you mean 10.5.0.0/24?' });
  assert.throws(() => parseSubnet('fd00::/64'), /only IPv4 is supported/);
  assert.throws(() => parseSubnet('300.1.1.0/24'), { message: 'invalid subnet "300.1.1.0/24"' });
  assert.throws(() => parseSubnet('10.1.1.0'), { message: 'invalid subnet "10.1.1.0"' });
  assert.throws(() => parseSubnet('10.1.1.0/31'), /too small/);
  const s = parseSubnet('10.5.0.0/24');
  assert.equal(formatIpv4(parseGateway(undefined, s)), '10.5.0.1');
  assert.equal(formatIpv4(parseGateway('10.5.0.254', s)), '10.5.0.254');
  assert.throws(() => parseGateway('10.6.0.1', s), { message: 'gateway 10.6.0.1 is not in subnet 10.5.0.0/24' });
  assert.throws(() => parseGateway('10.5.0.255', s), /not a usable address/);
  assert.ok(overlaps(parseSubnet('10.0.0.0/8'), s));
  assert.ok(!overlaps(parseSubnet('10.5.1.0/24'), s));
  assert.equal(cidrString(pickSubnet([])), '10.89.0.0/24');
  assert.equal(cidrString(pickSubnet([parseSubnet('10.89.0.0/24'), parseSubnet('10.89.1.0/25')])), '10.89.2.0/24');
  assert.equal(cidrString(pickSubnet([parseSubnet('10.89.0.0/16')])), '10.90.0.0/24');
  const routes = hostRoutes('Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n' +
    'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n' +
    'br0\t0000590A\t00000000\t0001\t0\t0\t0\t0000FFFF\n');
  assert.deepEqual(routes.map(cidrString), ['10.89.0.0/16']);
});

test('ports: validation and clash rules', () => {
  assert.throws(() => normalizePorts([{ hostPort: 70000, containerPort: 80, protocol: 'tcp' }]), { message: 'invalid host port "70000"' });
  assert.throws(() => normalizePorts([{ hostPort: 80, containerPort: 80, protocol: 'sctp' as 'tcp' }]), /invalid protocol "sctp"/);
  assert.deepEqual(normalizePorts([{ hostIp: '0.0.0.0', hostPort: 1, containerPort: 2, protocol: 'tcp' }]), [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }]);
  const t = new PortTable();
  t.reserve('a', [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
  assert.throws(() => t.check([{ hostPort: 8080, containerPort: 81, protocol: 'tcp' }], []), { message: 'port 8080/tcp is already allocated' });
  assert.throws(() => t.check([{ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 81, protocol: 'tcp' }], []), /already allocated/);
  t.check([{ hostPort: 8080, containerPort: 81, protocol: 'udp' }], []);
  assert.throws(() => t.check([{ hostPort: 9, containerPort: 1, protocol: 'tcp' }, { hostPort: 9, containerPort: 2, protocol: 'tcp' }], []), /9\/tcp is already allocated/);
  const listeners = [{ ip: '127.0.0.1', port: 9000, protocol: 'tcp' as const }, { ip: '::', port: 9001, protocol: 'tcp' as const }];
  assert.throws(() => t.check([{ hostPort: 9000, containerPort: 1, protocol: 'tcp' }], listeners), { message: 'bind 0.0.0.0:9000: address already in use' });
  t.check([{ hostIp: '10.1.1.1', hostPort: 9000, containerPort: 1, protocol: 'tcp' }], listeners);
  assert.throws(() => t.check([{ hostIp: '10.1.1.1', hostPort: 9001, containerPort: 1, protocol: 'tcp' }], listeners), { message: 'bind 10.1.1.1:9001: address already in use' });
  const chosen = t.reserve('b', [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }]);
  assert.ok(chosen[0].hostPort > 1024);
  t.release('a');
  t.check([{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], []);
});

test('hosts and resolv.conf content', () => {
  const hosts = sandboxHosts('web.example', '10.5.0.2', extraHostLines(['db:10.0.0.9', 'gw:host-gateway'], '10.5.0.1'));
  assert.match(hosts, /^127\.0\.0\.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n/);
  assert.match(hosts, /\n10\.0\.0\.9\tdb\n10\.5\.0\.1\tgw\n/);
  assert.match(hosts, /\n10\.5\.0\.2\tweb\.example web\n$/);
  assert.throws(() => extraHostLines(['nocolon'], undefined), { message: 'invalid extra host "nocolon": use host:ip' });
  assert.throws(() => extraHostLines(['x:1.2.3'], undefined), /invalid extra host "x:1.2.3"/);
  const host = 'nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp\noptions edns0\n';
  assert.equal(copiedResolvConf(host), 'nameserver 10.0.0.2\nsearch corp\noptions edns0\n');
  assert.equal(copiedResolvConf('nameserver 127.0.0.53\n'), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
  assert.equal(embeddedResolvConf('10.5.0.1', host), 'nameserver 10.5.0.1\nsearch corp\noptions edns0 ndots:0\n');
});

const net = (id: string, name: string, gateway: string, dns = true): NetworkConfig => ({
  id, name, driver: 'bridge', bridge: `br-${id}`, subnet: `${gateway.replace(/\.1$/, '.0')}/24`, gateway, internal: false, dns, labels: {}, created: '',
});
const sb = (id: string, name: string, atts: [string, string, string[]][]): SandboxRecord => ({
  containerId: id.padEnd(64, '0'), name, hostname: name, mode: 'bridge', state: 'ready', ports: [], hosts: '', resolvConf: '', created: '',
  attachments: atts.map(([networkId, ip, aliases], i) => ({
    network: networkId, networkId, ifname: `eth${i}`, ip, prefixLength: 24, gateway: '', mac: '', aliases, dns: true,
    list: { cniVersion: '1.0.0', name: networkId, plugins: [] },
  })),
});

test('resolver: names, aliases, short ids, shared networks only', () => {
  const nets = [net('a', 'neta', '10.1.0.1'), net('b', 'netb', '10.2.0.1'), net('d', 'bridge', '10.3.0.1', false)];
  const live = [
    sb('111111111111', 'web', [['a', '10.1.0.2', ['www']]]),
    sb('222222222222', 'db', [['b', '10.2.0.2', []]]),
    sb('333333333333', 'app', [['a', '10.1.0.3', []], ['b', '10.2.0.3', []]]),
  ];
  const fromApp = { source: '10.1.0.3', local: '10.1.0.1' };
  assert.deepEqual(lookupName(nets, live, { ...fromApp, name: 'web' }), ['10.1.0.2']);
  assert.deepEqual(lookupName(nets, live, { ...fromApp, name: 'www' }), ['10.1.0.2']);
  assert.deepEqual(lookupName(nets, live, { ...fromApp, name: '111111111111' }), ['10.1.0.2']);
  assert.deepEqual(lookupName(nets, live, { ...fromApp, name: 'web.neta' }), ['10.1.0.2']);
  assert.deepEqual(lookupName(nets, live, { ...fromApp, name: 'db' }), ['10.2.0.2'], 'app shares netb with db');
  const fromWeb = { source: '10.1.0.2', local: '10.1.0.1' };
  assert.equal(lookupName(nets, live, { ...fromWeb, name: 'db' }), undefined, 'web shares nothing with db');
  assert.equal(lookupName(nets, live, { source: '10.3.0.5', local: '10.3.0.1', name: 'web' }), undefined, 'no names on the default network');
  assert.equal(lookupAddress(nets, live, { ...fromApp, ip: '10.2.0.2' }), 'db');
});

function query(name: string, type: number, id = 0x1234): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0); h.writeUInt16BE(0x0100, 2); h.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4); tail.writeUInt16BE(type, 0); tail.writeUInt16BE(1, 2);
  return Buffer.concat([h, encodeName(name), tail]);
}

async function ask(port: number, msg: Buffer): Promise<Buffer> {
  const s = createSocket('udp4');
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer')), 3000);
      s.on('message', (m) => { clearTimeout(timer); resolve(m); });
      s.send(msg, port, '127.0.0.1');
    });
  } finally { s.close(); }
}

test('DNS server: A records, empty AAAA, forwarding, NXDOMAIN without upstreams', async () => {
  // A fake upstream that answers everything with NOERROR and no records, marked by the id it echoes.
  const upstream = createSocket('udp4');
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', r));
  upstream.on('message', (m, rinfo) => {
    const q = parseQuery(m)!;
    const res = Buffer.from(m); res.writeUInt16BE(0x8180, 2);
    upstream.send(res, rinfo.port, rinfo.address);
    void q;
  });
  let ups = [{ address: '127.0.0.1', port: (upstream.address() as AddressInfo).port }];
  const srv = new DnsServer({
    lookup: ({ name }) => (name === 'web' ? ['10.1.0.2', '10.1.0.3'] : undefined),
    reverse: () => undefined,
    upstreams: () => ups,
  });
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  probe.close();
  await srv.listen('127.0.0.1', port);
  try {
    const a = await ask(port, query('WEB', TYPE_A));
    assert.equal(a.readUInt16BE(0), 0x1234);
    assert.equal(a[3] & 0xf, RCODE_NOERROR);
    assert.equal(a.readUInt16BE(6), 2, 'two A records');
    assert.deepEqual([...a.subarray(a.length - 4)], [10, 1, 0, 3]);
    const aaaa = await ask(port, query('web', 28));
    assert.equal(aaaa[3] & 0xf, RCODE_NOERROR);
    assert.equal(aaaa.readUInt16BE(6), 0, 'no AAAA records');
    const fwd = await ask(port, query('example.org', TYPE_A, 0x4321));
    assert.equal(fwd.readUInt16BE(0), 0x4321);
    assert.equal(fwd.readUInt16BE(2), 0x8180, 'the upstream answer, relayed');
    ups = [];
    const nx = await ask(port, query('example.org', TYPE_A));
    assert.equal(nx[3] & 0xf, RCODE_NXDOMAIN);
  } finally {
    await srv.close();
    upstream.close();
  }
});

test('CNI executor: environment, stdin, capabilities, result and error objects', async () => {
  const { mkdtempSync, writeFileSync, rmSync, chmodSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { addList, delList } = await import('../../src/engine/network/cni.ts');
  const dir = mkdtempSync(join(tmpdir(), 'pier-cni-'));
  try {
    // A plugin that echoes what it was given as its result, and fails DEL with a CNI error object.
    writeFileSync(join(dir, 'echo'), `#!/bin/sh
in=$(cat)
if [ "$CNI_COMMAND" = DEL ]; then echo '{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no such thing"}'; exit 1; fi
printf '{"cniVersion":"1.0.0","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[],"dns":{"domain":"%s"},"stdin":%s}' "$CNI_IFNAME" "$CNI_NETNS" "$CNI_CONTAINERID" "$in"
`);
    chmodSync(join(dir, 'echo'), 0o755);
    const list = { cniVersion: '1.0.0', name: 'n1', plugins: [{ type: 'echo', capabilities: { portMappings: true }, x: 1 }, { type: 'echo' }] };
    const rt = { path: `/nonexistent:${dir}`, containerId: 'cid', netns: '/run/netns/x', ifname: 'eth0', runtimeConfig: { portMappings: [1], bandwidth: 2 } };
    const r = await addList(list, rt) as unknown as { interfaces: { name: string; sandbox: string }[]; dns: { domain: string }; stdin: Record<string, unknown> };
    assert.deepEqual(r.interfaces, [{ name: 'eth0', sandbox: '/run/netns/x' }]);
    assert.equal(r.dns.domain, 'cid');
    // The second plugin saw the first one's result; it declared no capabilities, so no runtimeConfig.
    assert.equal(r.stdin.name, 'n1');
    assert.equal(r.stdin.runtimeConfig, undefined);
    const prev = r.stdin.prevResult as { stdin: Record<string, unknown> };
    assert.deepEqual(prev.stdin.runtimeConfig, { portMappings: [1] }, 'only declared capabilities');
    assert.equal(prev.stdin.x, 1);
    await assert.rejects(delList(list, rt), { message: 'CNI echo DEL on n1/eth0: bad config: no such thing' });
    await assert.rejects(addList({ ...list, plugins: [{ type: 'nope' }] }, rt), /CNI plugin "nope" not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
