/**
 * The engine end to end, typed as a user would: `pier run` and friends against a real pierd (started
 * on demand by the CLI), real containers, real bridge networking and published ports.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { get, request } from 'node:http';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../../src/registry/server/index.ts';
import { bridgePorts, iptablesRules, mountsUnder, pierNetns, testEngine, until, type TestEngine } from '../helpers/engine.ts';

let e: TestEngine;

function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** One call to the test daemon's API, straight over its socket (no CLI start-up in the way). */
function api(method: string, path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(e.run, 'pier.sock'), method, path: `/v1/containers/${path}` }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body ? JSON.parse(body) : undefined) : reject(new Error(`${method} ${path}: ${res.statusCode} ${body}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function fetchRetry(url: string): Promise<{ status: number; body: string }> {
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try { return await fetchText(url); } catch (err) { last = err; await new Promise((r) => setTimeout(r, 50)); }
  }
  throw last;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

before(() => { e = testEngine(); });
after(async () => { await e.close(); });

describe('pier run', () => {
  test('foreground: output, stderr apart, exit status; --rm leaves nothing', () => {
    const r = e.pier(['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(e.ok(['ps', '-aq']), '');
  });

  test('-d prints the id; logs, ps, inspect, stop record the run', async () => {
    const id = e.ok(['run', '-d', '--name', 'ticker', 'busybox', 'sh', '-c', 'echo started; trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done']).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await until(() => e.ok(['logs', 'ticker']).includes('started'), 'first log line');
    const ps = JSON.parse(e.ok(['ps', '--format', 'json']));
    assert.equal(ps.length, 1);
    assert.equal(ps[0].name, 'ticker');
    assert.equal(ps[0].state.status, 'running');
    const info = e.inspect('ticker');
    assert.ok(info.state.pid > 0);
    assert.ok(existsSync(`/proc/${info.state.pid}`));
    e.ok(['stop', 'ticker']);
    const after = e.inspect('ticker');
    assert.equal(after.state.status, 'exited');
    assert.equal(after.state.exitCode, 0);
    assert.match(e.ok(['logs', 'ticker']), /started\nbye\n/);
    assert.equal(e.ok(['logs', '--tail', '1', 'ticker']), 'bye\n');
    e.ok(['rm', 'ticker']);
  });

  test('-i sends stdin to the container; logs -f follows until the exit', async () => {
    const r = e.pier(['run', '-i', '--rm', 'busybox', 'sh', '-c', 'tr a-z A-Z'], { input: 'shout this\n' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'SHOUT THIS\n');
    e.ok(['run', '-d', '--name', 'counter', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo n$i; sleep 0.2; done']);
    const f = await e.pierAsync(['logs', '-f', 'counter']);
    assert.equal(f.status, 0);
    assert.equal(f.stdout, 'n1\nn2\nn3\n');
    assert.match(e.ok(['logs', '-t', 'counter']), /^\d{4}-\d\d-\d\dT[\d:.]+Z n1\n/);
    assert.equal(e.ok(['start', '-a', 'counter']), 'n1\nn2\nn3\n');
    e.ok(['rm', 'counter']);
  });

  test('env, workdir, user, hostname, entrypoint, read-only root, dropped capability', () => {
    const envFile = join(mkdtempSync(join(tmpdir(), 'pier-env-')), 'env');
    writeFileSync(envFile, '# comment\nFROM_FILE=yes\n');
    const out = e.ok(['run', '--rm', '-e', 'A=1', '--env-file', envFile, '-w', '/tmp', '-u', 'nobody', '--hostname', 'boat',
      'busybox', 'sh', '-c', 'echo $A $FROM_FILE $(pwd) $(id -u) $(hostname)']);
    assert.equal(out, '1 yes /tmp 65534 boat\n');
    assert.equal(e.ok(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'via', 'entrypoint']), 'via entrypoint\n');
    const ro = e.pier(['run', '--rm', '--read-only', 'busybox', 'touch', '/x']);
    assert.notEqual(ro.status, 0);
    assert.match(ro.stderr, /Read-only file system/);
    const chown = e.pier(['run', '--rm', '--cap-drop', 'CHOWN', 'busybox', 'chown', 'nobody', '/tmp']);
    assert.notEqual(chown.status, 0);
    assert.match(chown.stderr, /Operation not permitted/);
  });

  test('--init runs pier-init as PID 1 and the command under it', () => {
    const out = e.ok(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$']);
    const [pid1, self] = out.trim().split('\n');
    assert.match(pid1, /^\/sbin\/docker-init -- sh -c/);
    assert.notEqual(self.trim(), '1');
  });

  test('--memory: the OOM kill is reported (137, OOMKilled)', () => {
    const r = e.pier(['run', '--name', 'hog', '--memory', '16m', 'busybox', 'sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived']);
    assert.equal(r.status, 137, r.stderr);
    const info = e.inspect('hog');
    assert.equal(info.state.oomKilled, true);
    e.ok(['rm', 'hog']);
  });

  test('exec, top, stats, pause/unpause, cp in and out', async () => {
    e.ok(['run', '-d', '--name', 'box', 'busybox', 'sleep', '1000']);
    assert.equal(e.ok(['exec', 'box', 'cat', '/etc/hostname']).trim(), e.inspect('box').id.slice(0, 12));
    assert.equal(e.pier(['exec', 'box', 'sh', '-c', 'exit 7']).status, 7);
    assert.equal(e.ok(['exec', '-e', 'X=y', '-w', '/etc', 'box', 'sh', '-c', 'echo $X $(pwd)']), 'y /etc\n');
    assert.match(e.ok(['top', 'box']), /sleep 1000/);
    const stats = JSON.parse(e.ok(['stats', '--no-stream', '--format', 'json', 'box']));
    assert.ok(stats[0].memoryUsage > 0);
    assert.ok(stats[0].pids >= 1);
    e.ok(['pause', 'box']);
    assert.equal(e.inspect('box').state.status, 'paused');
    e.ok(['unpause', 'box']);
    assert.equal(e.inspect('box').state.status, 'running');
    const dir = mkdtempSync(join(tmpdir(), 'pier-cp-'));
    writeFileSync(join(dir, 'in.txt'), 'hello container\n');
    e.ok(['cp', join(dir, 'in.txt'), 'box:/tmp/']);
    assert.equal(e.ok(['exec', 'box', 'cat', '/tmp/in.txt']), 'hello container\n');
    e.ok(['cp', join(dir, 'in.txt'), 'box:/tmp/renamed.txt']);
    assert.equal(e.ok(['exec', 'box', 'cat', '/tmp/renamed.txt']), 'hello container\n');
    e.ok(['cp', 'box:/etc/passwd', join(dir, 'passwd')]);
    assert.match(readFileSync(join(dir, 'passwd'), 'utf8'), /^root:/);
    e.ok(['rm', '-f', 'box']);
    assert.equal(e.ok(['ps', '-aq']), '');
  });
});

describe('images from a registry', () => {
  test('run pulls a registry image that is not here (--pull missing), always with --pull always, never with --pull never', async () => {
    const reg = await startRegistry({ listen: '127.0.0.1:0', storage: mkdtempSync(join(tmpdir(), 'pier-engine-reg-')) });
    try {
      const image = `${reg.host}/lib/bb:1`;
      const push = await e.pierAsync(['push', 'busybox:latest', image]);
      assert.equal(push.status, 0, push.stderr);
      // (push SRC DEST does not name DEST here: the image is only in the registry)
      const never = await e.pierAsync(['run', '--rm', '--pull', 'never', image, 'true']);
      assert.equal(never.status, 1);
      assert.match(never.stderr, /^pier: run: image ".*" not found \(pull or build it first\)\n$/);
      const first = await e.pierAsync(['run', '--rm', image, 'echo', 'pulled']);
      assert.equal(first.status, 0, first.stderr);
      assert.equal(first.stdout, 'pulled\n', 'stdout is the container\'s alone');
      assert.match(first.stderr, new RegExp(`^Unable to find image '${image}' locally\n(.*\n)*${image}: digest: sha256:[0-9a-f]{64}\n$`));
      const second = await e.pierAsync(['run', '--rm', image, 'echo', 'again']);
      assert.equal(second.stderr, '', 'here now: no pull');
      const always = await e.pierAsync(['run', '--rm', '--pull', 'always', image, 'true']);
      assert.equal(always.status, 0, always.stderr);
      assert.match(always.stderr, /: digest: sha256:/);
      const unknown = await e.pierAsync(['run', '--rm', `${reg.host}/lib/none:1`, 'true']);
      assert.equal(unknown.status, 1);
      assert.equal(unknown.stderr.split('\n').filter(Boolean).length, 2, unknown.stderr);
      assert.match(unknown.stderr, /\npier: run: pull .*\/lib\/none:1: (NAME|MANIFEST)_UNKNOWN: /);
      const bad = await e.pierAsync(['run', '--rm', '--pull', 'sometimes', image, 'true']);
      assert.equal(bad.stderr, 'pier: run: invalid --pull "sometimes": use missing, always or never\n');
      assert.equal(e.ok(['ps', '-aq']), '');
      e.ok(['rmi', image]);
    } finally {
      await reg.close();
    }
  });
});

describe('--runtime runc', () => {
  test('runs, execs, stops and reports exit codes through Debian runc', async () => {
    assert.equal(e.ok(['run', '--rm', '--runtime', 'runc', 'busybox', 'echo', 'via runc']), 'via runc\n');
    assert.equal(e.pier(['run', '--rm', '--runtime', 'runc', 'busybox', 'sh', '-c', 'exit 5']).status, 5);
    e.ok(['run', '-d', '--name', 'rc', '--runtime', 'runc', 'busybox', 'sleep', '1000']);
    // Recorded by name (what pierd's table calls it) and by the binary it was started with.
    assert.equal(e.inspect('rc').config.runtime, 'runc');
    assert.equal(e.inspect('rc').runtimePath, '/usr/sbin/runc');
    assert.equal(e.ok(['exec', 'rc', 'echo', 'exec via runc']), 'exec via runc\n');
    assert.match(e.ok(['top', 'rc']), /sleep 1000/);
    // its rootfs is mounted in runc's private mount namespace, not on the host (nor is a pier one's)
    e.ok(['run', '-d', '--name', 'pc', 'busybox', 'sleep', '1000']);
    assert.equal(e.ok(['exec', 'rc', 'sh', '-c', 'echo hi > /made; cat /made']), 'hi\n');
    assert.deepEqual(mountsUnder(e.root), [], 'no rootfs mount on the host while they run');
    // cp of the stopped one reads its tree through a short-lived view
    e.ok(['stop', '-t', '1', 'pc']);
    const dest = mkdtempSync(join(tmpdir(), 'pier-cp-view-'));
    e.ok(['cp', 'pc:/etc/passwd', join(dest, 'passwd')]);
    assert.match(readFileSync(join(dest, 'passwd'), 'utf8'), /root:x:0:0/);
    rmSync(dest, { recursive: true, force: true });
    assert.deepEqual(mountsUnder(e.root), [], 'the view is gone');
    e.ok(['rm', 'pc']);
    e.ok(['stop', '-t', '1', 'rc']);
    assert.equal(e.inspect('rc').state.exitCode, 137);
    e.ok(['rm', 'rc']);
  });
});

describe('networking', () => {
  test('two containers on a user network reach each other by name', async () => {
    e.ok(['network', 'create', 'appnet']);
    try {
    e.ok(['run', '-d', '--name', 'web', '--network', 'appnet', 'busybox', 'sh', '-c', 'mkdir -p /www && echo hello-from-web > /www/index.html && httpd -f -p 8080 -h /www']);
    const out = await e.pierAsync(['run', '--rm', '--network', 'appnet', 'busybox', 'sh', '-c',
      'for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://web:8080/ && exit 0; sleep 0.2; done; exit 1']);
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stdout, 'hello-from-web\n');
    // The default bridge has no name resolution (docker's behaviour).
    const isolated = e.pier(['run', '--rm', 'busybox', 'wget', '-q', '-O', '-', 'http://web:8080/']);
    assert.notEqual(isolated.status, 0);
    const rm = e.pier(['network', 'rm', 'appnet']);
    assert.notEqual(rm.status, 0, 'a network with containers cannot be removed');
    } finally {
      e.pier(['rm', '-f', 'web']);
    }
    e.ok(['network', 'rm', 'appnet']);
  });

  test('a published port answers from the host; a taken port is refused, leaving nothing', async () => {
    const before = e.ok(['ps', '-aq']);
    const port = await freePort();
    const site = mkdtempSync(join(tmpdir(), 'pier-site-'));
    writeFileSync(join(site, 'index.html'), 'published!\n');
    e.ok(['run', '-d', '--name', 'pub', '-p', `${port}:80`, '-v', `${site}:/www:ro`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/www']);
    try {
    const res = await fetchRetry(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    assert.equal(res.body, 'published!\n');
    assert.match(e.ok(['port', 'pub']), new RegExp(`80/tcp -> 0.0.0.0:${port}`));
    const again = e.pier(['run', '-d', '-p', `${port}:80`, 'busybox', 'true']);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /already allocated|in use/);
    assert.equal(again.stderr.trim().split('\n').length, 1);
    } finally {
      e.pier(['rm', '-f', 'pub']);
    }
    // A host process holding the port.
    const holder = createServer().listen(port, '0.0.0.0');
    await new Promise((r) => holder.once('listening', r));
    try {
      const taken = e.pier(['run', '-d', '-p', `${port}:80`, 'busybox', 'true']);
      assert.notEqual(taken.status, 0);
      assert.match(taken.stderr, /in use|already allocated/);
    } finally {
      holder.close();
    }
    assert.equal(e.ok(['ps', '-aq']), before);
  });

  test('-p with only a container port publishes on a free host port', async () => {
    e.ok(['run', '-d', '--name', 'anyport', '-p', '80', 'busybox', 'sh', '-c', 'mkdir /www && echo any > /www/index.html && httpd -f -p 80 -h /www']);
    try {
      const m = /80\/tcp -> 0\.0\.0\.0:(\d+)/.exec(e.ok(['port', 'anyport']));
      assert.ok(m, 'a host port was chosen');
      assert.notEqual(Number(m[1]), 0);
      assert.equal((await fetchRetry(`http://127.0.0.1:${m[1]}/`)).body, 'any\n');
    } finally {
      e.pier(['rm', '-f', 'anyport']);
    }
  });

  test('--network none has only lo; --network host sees the host interfaces', () => {
    const none = e.ok(['run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net']);
    assert.equal(none.trim(), 'lo');
    const host = e.ok(['run', '--rm', '--network', 'host', 'busybox', 'ls', '/sys/class/net']);
    assert.ok(host.trim().split(/\s+/).length > 1);
  });
});

describe('volumes', () => {
  test('a named volume survives container re-creation; in-use volumes are kept', () => {
    e.ok(['run', '--rm', '-v', 'keep:/data', 'busybox', 'sh', '-c', 'echo persisted > /data/f']);
    assert.equal(e.ok(['run', '--rm', '-v', 'keep:/data', 'busybox', 'cat', '/data/f']), 'persisted\n');
    assert.match(e.ok(['volume', 'ls']), /keep/);
    e.ok(['create', '--name', 'holder', '-v', 'keep:/data', 'busybox', 'true']);
    const rm = e.pier(['volume', 'rm', 'keep']);
    assert.notEqual(rm.status, 0);
    assert.match(rm.stderr, /in use/);
    e.ok(['rm', 'holder']);
    e.ok(['volume', 'rm', 'keep']);
    assert.doesNotMatch(e.ok(['volume', 'ls']), /keep/);
  });

  test('a new volume gets the image content at its mount point', () => {
    assert.match(e.ok(['run', '--rm', '-v', 'etcvol:/etc', 'busybox', 'cat', '/etc/passwd']), /^root:/);
    e.ok(['volume', 'rm', 'etcvol']);
  });
});

describe('restart policies', () => {
  test('on-failure:2 restarts a crashing container twice, with backoff', async () => {
    e.ok(['run', '-d', '--name', 'crashy', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'echo run; exit 1']);
    await until(() => {
      const i = e.inspect('crashy');
      return i.state.status === 'exited' && i.state.restartCount === 2 && i;
    }, 'two restarts');
    assert.equal(e.ok(['logs', 'crashy']), 'run\nrun\nrun\n');
    e.ok(['rm', 'crashy']);
  });

  test('always restarts a container that exits 0; stop ends it', async () => {
    e.ok(['run', '-d', '--name', 'again', '--restart', 'always', 'busybox', 'sh', '-c', 'echo tick; sleep 0.2']);
    await until(() => e.inspect('again').state.restartCount >= 2, 'restarts');
    e.ok(['stop', 'again']);
    const i = e.inspect('again');
    assert.equal(i.state.status, 'exited');
    const n = i.state.restartCount;
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(e.inspect('again').state.restartCount, n, 'a stopped container stays stopped');
    e.ok(['rm', 'again']);
  });

  test('a stop or rm -f that lands while a restart is being started wins', async () => {
    // The window is between the backoff timer firing (restartCount goes up, status still
    // "restarting") and the new run being up; poll the daemon's API to land in it.
    const netnsBefore = pierNetns();
    for (const verb of ['stop', 'rm'] as const) {
      e.ok(['run', '-d', '--name', 'cycle', '--restart', 'always', 'busybox', 'true']);
      const count = (await api('GET', 'cycle')).state.restartCount as number;
      let hit = false;
      for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
        const st = (await api('GET', 'cycle')).state;
        if (st.restartCount > count && st.status === 'restarting') { hit = true; break; }
      }
      assert.ok(hit, 'saw the restart begin');
      if (verb === 'stop') {
        await api('POST', 'cycle/stop?t=1');
        assert.equal(e.inspect('cycle').state.status, 'exited');
        await new Promise((r) => setTimeout(r, 400));
        assert.equal(e.inspect('cycle').state.status, 'exited', 'a stopped container stays stopped');
        e.ok(['rm', 'cycle']);
      } else {
        await api('DELETE', 'cycle?force=1');
        await new Promise((r) => setTimeout(r, 400));
        assert.doesNotMatch(e.ok(['ps', '-a']), /cycle/);
      }
      assert.deepEqual(pierNetns(), netnsBefore, 'no netns left');
    }
  });
});

describe('daemon restarts', () => {
  test('pierd killed with -9 and restarted keeps and manages running containers', async () => {
    e.ok(['run', '-d', '--name', 'survivor', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done']);
    const before = e.inspect('survivor');
    const pid = e.daemonPid()!;
    process.kill(pid, 'SIGKILL');
    await until(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, 'pierd gone');
    // The container runs on and keeps logging with no daemon.
    const lines = readFileSync(before.logPath, 'utf8').split('\n').length;
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(existsSync(`/proc/${before.state.pid}`), 'container init still alive');
    assert.ok(readFileSync(before.logPath, 'utf8').split('\n').length > lines, 'still logging');
    // Any command starts a new daemon, which takes the container over.
    const ps = (JSON.parse(e.ok(['ps', '--format', 'json'])) as { name: string; state: { status: string } }[]).filter((c) => c.name === 'survivor');
    assert.equal(ps.length, 1);
    assert.equal(ps[0].state.status, 'running');
    assert.notEqual(e.daemonPid(), pid);
    assert.equal(e.ok(['exec', 'survivor', 'echo', 'reachable']), 'reachable\n');
    e.ok(['stop', '-t', '1', 'survivor']);
    const after = e.inspect('survivor');
    assert.equal(after.state.status, 'exited');
    assert.equal(after.state.exitCode, 137);
    e.ok(['rm', 'survivor']);
  });

  test('a container that exits while pierd is down is reported when it comes back', async () => {
    e.ok(['run', '-d', '--name', 'short', 'busybox', 'sh', '-c', 'sleep 0.5; exit 4']);
    const pid = e.daemonPid()!;
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1200));
    await until(() => e.inspect('short').state.status === 'exited', 'exit recorded');
    assert.equal(e.inspect('short').state.exitCode, 4);
    e.ok(['rm', 'short']);
  });
});

describe('bad input: one line, non-zero, nothing made', () => {
  const cases: [string, string[], RegExp][] = [
    ['unknown image', ['run', 'no-such-image:1'], /not found/],
    ['bad memory', ['run', '--memory', 'lots', 'busybox'], /invalid memory/],
    ['bad port', ['run', '-p', '99999:80', 'busybox'], /invalid port/],
    ['bad restart policy', ['run', '--restart', 'sometimes', 'busybox'], /invalid restart policy/],
    ['missing bind source', ['run', '-v', '/no/such/dir:/x', 'busybox'], /bind source path does not exist/],
    ['unknown network', ['run', '--network', 'nonet', 'busybox'], /not found/],
    ['unknown capability', ['run', '--cap-add', 'CAP_FLY', 'busybox'], /unknown capability/],
    ['unknown flag', ['run', '--bogus', 'busybox'], /unknown flag --bogus/],
    ['missing command', ['run', 'busybox', '/no/such/binary'], /no\/such\/binary/],
  ];
  for (const [what, args, re] of cases) {
    test(what, () => {
      const before = e.ok(['ps', '-aq']);
      const state = { netns: pierNetns(), veths: bridgePorts(e.bridge), mounts: mountsUnder(e.root), rules: iptablesRules() };
      const r = e.pier(args);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(e.ok(['ps', '-aq']), before);
      assert.deepEqual({ netns: pierNetns(), veths: bridgePorts(e.bridge), mounts: mountsUnder(e.root), rules: iptablesRules() }, state);
    });
  }

  test('name conflict', () => {
    e.ok(['create', '--name', 'taken', 'busybox', 'true']);
    const before = e.ok(['ps', '-aq']);
    const r = e.pier(['run', '--name', 'taken', 'busybox', 'true']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /already in use/);
    assert.equal(e.ok(['ps', '-aq']), before);
    e.ok(['rm', 'taken']);
  });
});
