/**
 * Pods and shared namespaces, typed as a user would: two containers in one pod talk over localhost
 * and share a hostname; a pod's published port reaches its second container; `--network
 * container:NAME`; `pier pod rm -f` takes every netns, veth, iptables rule, mount and cgroup the
 * pod made; bad input is one line with nothing made.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { bridgePorts, iptablesRules, mountsUnder, pierNetns, testEngine, until, type TestEngine } from '../helpers/engine.ts';

let e: TestEngine;
before(() => { e = testEngine(); });
after(async () => {
  for (const id of e.pier(['pod', 'ls', '-q']).stdout.split('\n').filter(Boolean)) e.pier(['pod', 'rm', '-f', id]);
  await e.close();
});

/** cgroup dirs named like this pod's parent, in every hierarchy. */
function podCgroups(podId: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const d = join('/sys/fs/cgroup', h, 'pier', `pod-${podId.slice(0, 12)}`);
    if (existsSync(d)) out.push(d);
  }
  return out;
}

function fetchOnce(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    s.setTimeout(3000, () => { s.destroy(); reject(new Error('timeout')); });
    s.on('connect', () => s.end('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', (d) => { data += d; });
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

describe('pods', () => {
  test('two containers in one pod share localhost and a hostname; a pod port reaches the second; rm -f leaves nothing', async () => {
    const netnsBefore = pierNetns();
    const rulesBefore = iptablesRules();
    const podId = e.ok(['pod', 'create', '--name', 'web', '--hostname', 'webpod', '-p', '18481:8080']).trim();
    assert.match(podId, /^[0-9a-f]{64}$/);
    assert.match(e.ok(['pod', 'ls']), /web\s+Created/);
    // the server: busybox httpd in the pod on 8080
    e.ok(['run', '-d', '--pod', 'web', '--name', 'srv', 'busybox', 'sh', '-c', 'mkdir -p /w && echo hello-from-srv > /w/index.html && hostname > /w/h && exec httpd -f -p 8080 -h /w']);
    // the client in the same pod reaches it on localhost and sees the pod's hostname
    const out = await until(() => {
      const r = e.pier(['run', '--rm', '--pod', 'web', 'busybox', 'sh', '-c', 'timeout 3 wget -qO- http://127.0.0.1:8080/ && timeout 3 wget -qO- http://localhost:8080/h && hostname']);
      return r.status === 0 && r.stdout;
    }, 'the client reaching srv over localhost');
    assert.deepEqual(out.trim().split('\n'), ['hello-from-srv', 'webpod', 'webpod']);
    // the pod's published port reaches srv (a container that publishes nothing itself)
    let body = '';
    for (let i = 0; i < 100 && !body.includes('hello'); i++) {
      try { body = await fetchOnce(18481); } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
    assert.match(body, /hello-from-srv/);
    const info = JSON.parse(e.ok(['pod', 'inspect', 'web']))[0];
    assert.equal(info.state, 'Running');
    assert.equal(info.containers.length, 2, 'infra and srv (the --rm client is gone)');
    assert.ok(podCgroups(podId).length > 0, 'the pod has a cgroup parent');
    const ids: string[] = info.containers.map((c: { id: string }) => c.id);
    // rm without -f refuses a running pod, and changes nothing
    const r = e.pier(['pod', 'rm', 'web']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr.trim(), /^pier: pod rm: pod web is running \(srv\): stop it first or use --force$/);
    assert.equal(JSON.parse(e.ok(['pod', 'inspect', 'web']))[0].state, 'Running');
    e.ok(['pod', 'rm', '-f', 'web']);
    assert.doesNotMatch(e.ok(['ps', '-a']), /srv|web-infra/);
    assert.equal(e.ok(['pod', 'ls', '-q']), '');
    const mine = (n: string) => ids.some((id) => n === `pier-${id.slice(0, 12)}`);
    assert.deepEqual(pierNetns().filter(mine), [], 'no netns of the pod');
    assert.deepEqual(pierNetns().filter((n) => !netnsBefore.includes(n) && mine(n)), []);
    assert.deepEqual(bridgePorts(e.bridge), [], 'no veth on the bridge');
    assert.deepEqual(iptablesRules().filter((l) => l.includes('18481') || ids.some((id) => l.includes(id.slice(0, 12)))), [], 'no port rule');
    assert.deepEqual(iptablesRules().filter((l) => !rulesBefore.includes(l) && l.includes(e.bridge) === false && l.includes('18481')), []);
    assert.deepEqual(mountsUnder(e.root), [], 'no mount');
    assert.deepEqual(podCgroups(podId), [], 'no cgroup');
  });

  test('--network container:NAME shares the other container\'s network and hosts', async () => {
    e.ok(['run', '-d', '--name', 'netowner', 'busybox', 'sh', '-c', 'echo owner > /tmp/i && exec httpd -f -p 8081 -h /tmp']);
    const out = await until(() => {
      const r = e.pier(['run', '--rm', '--network', 'container:netowner', 'busybox', 'sh', '-c', 'timeout 3 wget -qO- http://127.0.0.1:8081/i']);
      return r.status === 0 && r.stdout;
    }, 'a joiner reaching the owner on localhost');
    assert.equal(out.trim(), 'owner');
    const ownerIp = e.inspect('netowner').network.ips.bridge;
    const joinerIps = e.ok(['run', '--rm', '--network', 'container:netowner', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0']);
    assert.match(joinerIps, new RegExp(`inet ${ownerIp.replace(/\./g, '\\.')}/`));
    // joining a stopped container fails at start, with one line
    e.ok(['stop', '-t', '1', 'netowner']);
    const r = e.pier(['run', '--rm', '--network', 'container:netowner', 'busybox', 'true']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr.trim(), /cannot join the network namespace of netowner: it is not running$/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    e.ok(['rm', 'netowner']);
  });

  test('--share pid: the pause process is PID 1 of every container in the pod; ipc is shared', async () => {
    e.ok(['pod', 'create', '--name', 'pidpod', '--share', 'net,ipc,uts,pid']);
    e.ok(['run', '-d', '--pod', 'pidpod', '--name', 'sleeper', 'busybox', 'sh', '-c', 'exec sleep 300']);
    const ps = e.ok(['run', '--rm', '--pod', 'pidpod', 'busybox', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; ps -o comm']);
    assert.match(ps.split('\n')[0], /^\/pause --pause/);
    assert.match(ps, /sleep/);
    const ipc = (ref: string) => e.ok(['exec', ref, 'readlink', '/proc/self/ns/ipc']).trim();
    e.ok(['run', '-d', '--pod', 'pidpod', '--name', 'sleeper2', 'busybox', 'sleep', '300']);
    assert.equal(ipc('sleeper'), ipc('sleeper2'));
    e.ok(['pod', 'rm', '-f', 'pidpod']);
    assert.doesNotMatch(e.ok(['ps', '-a']), /sleeper/);
  });

  test('bad input: one line, non-zero, nothing made', () => {
    e.ok(['pod', 'create', '--name', 'p1']);
    const count = () => e.ok(['ps', '-aq']).split('\n').filter(Boolean).length;
    const pods = () => e.ok(['pod', 'ls', '-q']).split('\n').filter(Boolean).length;
    const c0 = count(), p0 = pods();
    const cases: [string[], RegExp][] = [
      [['pod', 'create', '--name', 'p1'], /pod name "p1" is already in use/],
      [['pod', 'create', '--share', 'ipc', '-p', '8080:80'], /need the pod to share its network/],
      [['pod', 'create', '--share', 'net,bogus'], /share/],
      [['run', '--pod', 'nope', 'busybox', 'true'], /no such pod: nope/],
      [['run', '--pod', 'p1', '--network', 'host', 'busybox', 'true'], /--network conflicts with --pod p1/],
      [['run', '--pod', 'p1', '-p', '8080:80', 'busybox', 'true'], /published ports conflict with --pod p1/],
      [['run', '--pod', 'p1', '--hostname', 'x', 'busybox', 'true'], /hostname conflicts/],
      [['run', '--network', 'container:nope', 'busybox', 'true'], /container:nope: no such container/],
      [['rm', '-f', 'p1-infra'], /infra container of a pod: remove the pod/],
    ];
    for (const [args, want] of cases) {
      const r = e.pier(args);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, want, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line: ${r.stderr}`);
    }
    assert.equal(count(), c0, 'no container made');
    assert.equal(pods(), p0, 'no pod made');
    // a stopped pod takes no new container
    e.ok(['pod', 'start', 'p1']);
    e.ok(['pod', 'stop', '-t', '1', 'p1']);
    const r = e.pier(['run', '--pod', 'p1', 'busybox', 'true']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /pod p1 is stopped: start it first/);
    assert.equal(count(), c0);
    e.ok(['pod', 'rm', 'p1']);
    assert.equal(pods(), p0 - 1);
  });
});
