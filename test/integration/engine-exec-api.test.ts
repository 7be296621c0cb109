/**
 * Exec and attach through pierd (issue 11's task API): `pier exec` goes POST /containers/:ref/exec
 * → POST /exec/:id/start on a hijacked connection → the container's shim (exec op, protocol v2).
 * Exit codes (the process's, 126/127 when it cannot run), stdin through the stream, a tty (run
 * under script(1) so the CLI has a real terminal), resizes reaching the process, GET
 * /exec/:id/json, refusals with one line, `pier attach`, and the same through runc.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { EngineClient, enginePaths, FRAME, FrameReader, encodeFrame } from '../../src/engine/index.ts';
import { PIER, testEngine, type TestEngine } from '../helpers/engine.ts';

const RUNC = '/usr/sbin/runc';
let e: TestEngine;
let api: EngineClient;

before(() => {
  e = testEngine();
  api = new EngineClient({ paths: enginePaths({ root: e.root, run: e.run }), autoStart: false });
  e.ok(['run', '-d', '--init', '--name', 'box', 'busybox', 'sleep', '100000']);
});
after(async () => { await e.close(); });

/** One error line on stderr, nothing else. */
function oneLine(stderr: string, re: RegExp): void {
  const lines = stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `expected one line, got ${JSON.stringify(stderr)}`);
  assert.match(lines[0], re);
}

/** Read a hijacked stream to its EXIT: output by stream, and the exit record. */
function collect(sock: Socket): Promise<{ stdout: string; stderr: string; exit: { exitCode: number; error?: string } | undefined }> {
  return new Promise((resolve) => {
    const r = new FrameReader();
    let stdout = '', stderr = '';
    let exit: { exitCode: number; error?: string } | undefined;
    sock.on('data', (c: Buffer) => {
      for (const f of r.push(c)) {
        if (!('type' in f)) continue;
        if (f.type === FRAME.STDOUT) stdout += f.payload.toString();
        else if (f.type === FRAME.STDERR) stderr += f.payload.toString();
        else if (f.type === FRAME.EXIT) exit = JSON.parse(f.payload.toString());
      }
    });
    sock.on('close', () => resolve({ stdout, stderr, exit }));
    sock.resume();
  });
}

describe('pier exec through pierd', () => {
  test('the exit code is the process\'s', () => {
    assert.equal(e.pier(['exec', 'box', 'sh', '-c', 'exit 3']).status, 3);
    assert.equal(e.pier(['exec', 'box', 'sh', '-c', 'kill -9 $$']).status, 137);
    assert.equal(e.ok(['exec', 'box', 'echo', 'hi']), 'hi\n');
  });

  // (a file that exists but cannot be executed exits 1 with pier's runtime: its helper reports the
  // execve failure after the process was announced, and Runtime.exec returns only the status)
  test('a command that is not found exits 127, one that cannot be run 126, each with one line', () => {
    const missing = e.pier(['exec', 'box', 'no-such-command']);
    assert.equal(missing.status, 127);
    oneLine(missing.stderr, /executable file not found/);
    const dir = e.pier(['exec', 'box', '/etc']);
    assert.notEqual(dir.status, 0);
    const badCwd = e.pier(['exec', '-w', '/no/such/dir', 'box', 'true']);
    assert.equal(badCwd.status, 126);
    oneLine(badCwd.stderr, /chdir/);
  });

  test('stdin is piped through with -i (EOF included)', () => {
    assert.equal(e.ok(['exec', '-i', 'box', 'cat'], { input: 'hi\n' }), 'hi\n');
    const r = spawnSync('sh', ['-c', `echo hi | ${PIER} exec -i box cat`], { env: e.env, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'hi\n');
  });

  test('-e, -w and -u reach the process', () => {
    assert.equal(e.ok(['exec', '-e', 'X=y', '-w', '/etc', '-u', '1234:5', 'box', 'sh', '-c', 'echo $X $(pwd) $(id -u) $(id -g)']), 'y /etc 1234 5\n');
    const r = e.pier(['exec', '-u', 'nosuchuser', 'box', 'true']);
    assert.notEqual(r.status, 0);
    oneLine(r.stderr, /nosuchuser/);
  });

  test('-t under a real terminal: a pty of the terminal\'s size, the exit code passed on', () => {
    const script = `stty rows 40 cols 100; ${PIER} exec -t box sh -c 'tty; stty size; exit 4'; echo "rc=$?"`;
    const r = spawnSync('script', ['-qec', script, '/dev/null'], { env: e.env, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\/dev\/pts\/\d+\r*\n40 100\r*\n/);
    assert.match(r.stdout, /rc=4/);
  });

  test('-it under a real terminal: keys reach the process', () => {
    const script = `${PIER} exec -it box sh; echo "rc=$?"`;
    const r = spawnSync('script', ['-qec', script, '/dev/null'], { env: e.env, encoding: 'utf8', timeout: 30_000, input: 'echo typed-$((6*7)); exit 3\n' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /typed-42/);
    assert.match(r.stdout, /rc=3/);
  });

  test('a resize reaches the process (stty size after POST /exec/:id/resize), and /exec/:id/json tells the end', async () => {
    const { Id } = await api.json<{ Id: string }>('POST', '/containers/box/exec', { Cmd: ['sh', '-c', 'read x; stty size; exit 6'], Tty: true, AttachStdin: true, AttachStdout: true });
    const before = await api.json<{ Running: boolean; ExitCode: number | null }>('GET', `/exec/${Id}/json`);
    assert.equal(before.Running, false);
    assert.equal(before.ExitCode, null);
    const { socket } = await api.hijack('POST', `/exec/${Id}/start`, { Detach: false, Tty: true, ConsoleSize: [10, 20] });
    const out = collect(socket);
    const running = await api.json<{ Running: boolean; Pid: number; ContainerID: string }>('GET', `/exec/${Id}/json`);
    assert.equal(running.Running, true);
    assert.ok(running.Pid > 0);
    assert.equal(running.ContainerID, e.inspect('box').Id ?? e.inspect('box').id);
    await api.json('POST', `/exec/${Id}/resize?h=33&w=111`);
    // the size is set by a helper process: wait until the pty has it before asking
    await new Promise((r) => setTimeout(r, 300));
    socket.write(encodeFrame(FRAME.STDIN, 'go\r'));
    const got = await out;
    assert.match(got.stdout, /33 111/);
    assert.equal(got.exit?.exitCode, 6);
    const done = await api.json<{ Running: boolean; ExitCode: number; ProcessConfig: { entrypoint: string; arguments: string[]; tty: boolean } }>('GET', `/exec/${Id}/json`);
    assert.equal(done.Running, false);
    assert.equal(done.ExitCode, 6);
    assert.deepEqual(done.ProcessConfig.entrypoint, 'sh');
    assert.equal(done.ProcessConfig.tty, true);
    await assert.rejects(api.json('POST', `/exec/${Id}/resize?h=1&w=1`), /not running/);
    await assert.rejects(api.hijack('POST', `/exec/${Id}/start`, {}), /already been started/);
  });

  test('-d: the process runs on with /dev/null; its exit code is known afterwards', async () => {
    const { Id } = await api.json<{ Id: string }>('POST', '/containers/box/exec', { Cmd: ['sh', '-c', '(readlink /proc/$$/fd/1) > /detached; exit 9'] });
    await api.json('POST', `/exec/${Id}/start`, { Detach: true });
    let j: { ExitCode: number | null } = { ExitCode: null };
    for (let i = 0; i < 100 && j.ExitCode === null; i++) {
      j = await api.json<{ ExitCode: number | null }>('GET', `/exec/${Id}/json`);
      if (j.ExitCode === null) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(j.ExitCode, 9);
    assert.equal(e.ok(['exec', 'box', 'cat', '/detached']), '/dev/null\n');
  });

  test('bad requests: one clear error each', async () => {
    await assert.rejects(api.json('POST', '/containers/box/exec', { Cmd: [] }), /Cmd/);
    await assert.rejects(api.json('POST', '/containers/box/exec', { Cmd: ['true'], Bogus: 1 }), /Bogus/);
    await assert.rejects(api.json('POST', '/containers/box/exec', { Cmd: ['true'], WorkingDir: 'rel' }), /absolute/);
    const { Id } = await api.json<{ Id: string }>('POST', '/containers/box/exec', { Cmd: ['true'] });
    await assert.rejects(api.json('POST', `/exec/${Id}/start`, {}), /Upgrade/);
    await assert.rejects(api.json('POST', `/exec/${Id}/resize?h=0&w=10`), /h/);
    await assert.rejects(api.json('GET', '/exec/nosuchexec/json'), (err: Error & { status?: number }) => err.status === 404 && /no such exec/.test(err.message));
    await assert.rejects(api.hijack('POST', '/containers/box/nosuch', {}), /no hijacked stream|no such/);
  });

  test('exec into a stopped container: one line, non-zero', () => {
    e.ok(['create', '--name', 'stopped', 'busybox', 'true']);
    const r = e.pier(['exec', 'stopped', 'true']);
    assert.notEqual(r.status, 0);
    oneLine(r.stderr, /stopped.*not running/);
    const gone = e.pier(['exec', 'nosuchcontainer', 'true']);
    assert.notEqual(gone.status, 0);
    oneLine(gone.stderr, /no such container/i);
  });

  test('exec instances of a removed container are forgotten', async () => {
    e.ok(['run', '-d', '--name', 'shortlived', 'busybox', 'sleep', '1000']);
    const { Id } = await api.json<{ Id: string }>('POST', '/containers/shortlived/exec', { Cmd: ['true'] });
    e.ok(['rm', '-f', 'shortlived']);
    await assert.rejects(api.json('GET', `/exec/${Id}/json`), /no such exec/);
  });
});

describe('pier attach', () => {
  test('stdin in, output out, the container\'s exit code', () => {
    e.ok(['run', '-d', '-i', '--name', 'att', 'busybox', 'sh', '-c', 'read x; echo got $x; echo err >&2; exit 5']);
    const r = e.pier(['attach', 'att'], { input: 'hello\n' });
    assert.equal(r.status, 5, r.stderr);
    assert.equal(r.stdout, 'got hello\n');
    assert.equal(r.stderr, 'err\n');
  });

  test('a removed or stopped container: one line, non-zero', () => {
    e.ok(['run', '-d', '--name', 'doomed', 'busybox', 'sleep', '1000']);
    e.ok(['rm', '-f', 'doomed']);
    const r = e.pier(['attach', 'doomed']);
    assert.notEqual(r.status, 0);
    oneLine(r.stderr, /no such container/i);
    const s = e.pier(['attach', 'stopped']);
    assert.notEqual(s.status, 0);
    oneLine(s.stderr, /not running/);
  });
});

describe('exec through runc', { skip: existsSync(RUNC) ? false : 'no runc here' }, () => {
  before(() => { e.ok(['run', '-d', '--init', '--name', 'rc', '--runtime', 'runc', 'busybox', 'sleep', '100000']); });

  test('exit codes, stdin, env and a missing command', () => {
    assert.equal(e.pier(['exec', 'rc', 'sh', '-c', 'exit 4']).status, 4);
    assert.equal(e.ok(['exec', '-i', 'rc', 'cat'], { input: 'via runc\n' }), 'via runc\n');
    assert.equal(e.ok(['exec', '-e', 'A=b', '-w', '/tmp', 'rc', 'sh', '-c', 'echo $A $(pwd)']), 'b /tmp\n');
    const missing = e.pier(['exec', 'rc', 'no-such-command']);
    assert.equal(missing.status, 127, missing.stderr);
    oneLine(missing.stderr, /no-such-command/);
  });

  test('-t is refused with one line', () => {
    const r = e.pier(['exec', '-t', 'rc', 'true']);
    assert.notEqual(r.status, 0);
    oneLine(r.stderr, /terminal.*pier's own runtime/);
  });
});
