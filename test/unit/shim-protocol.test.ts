/**
 * The shim protocol's version handling and exec checks, without a container: ShimClient against a
 * fake shim that speaks version 1 (what a shim of an older pier answers: "unknown op" for the new
 * ops, the request's `v` ignored) and against one that speaks version 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FRAME, FrameReader, PROTOCOL_VERSION, ShimClient, checkExecSpec, execFailureCode, encodeFrame, jsonFrame } from '../../src/engine/shim/index.ts';

/** A fake shim: `answer` gets each opening request and writes frames back. */
async function fakeShim(answer: (req: Record<string, unknown>, write: (b: Buffer) => void, end: () => void) => void): Promise<{ path: string; seen: Record<string, unknown>[]; close: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'pier-fake-shim-'));
  const path = join(dir, 's.sock');
  const seen: Record<string, unknown>[] = [];
  const server: Server = createServer((sock) => {
    const r = new FrameReader({ line: true });
    sock.on('error', () => undefined);
    sock.on('data', (c: Buffer) => {
      for (const it of r.push(c)) {
        if ('line' in it) {
          const req = JSON.parse(it.line) as Record<string, unknown>;
          seen.push(req);
          answer(req, (b) => sock.write(b), () => sock.end());
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, seen, close: () => { server.close(); rmSync(dir, { recursive: true, force: true }); } };
}

/** What main.ts of a version-1 shim answers. */
const V1_OPS = new Set(['wait', 'attach', 'resize', 'kill', 'status', 'start']);
function v1(req: Record<string, unknown>, write: (b: Buffer) => void, end: () => void): void {
  if (!V1_OPS.has(String(req.op))) { write(jsonFrame(FRAME.REPLY, { error: `unknown op ${JSON.stringify(req.op)}` })); end(); return; }
  if (req.op === 'status') { write(jsonFrame(FRAME.REPLY, { ok: true, state: 'running', shimPid: 1, initPid: 2 })); end(); }
}

test('an older (version 1) shim: version() is 1, exec/pause/stats fail with one line saying so, old ops still work', async () => {
  const s = await fakeShim(v1);
  try {
    const c = await ShimClient.connect(s.path);
    assert.equal(await c.version(), 1);
    await assert.rejects(c.openExec({ args: ['true'] }), /older pier and has no exec op: restart the container/);
    await assert.rejects(c.exec({ args: ['true'] }), /older pier/);
    await assert.rejects(c.pause(), /older pier and has no pause op/);
    await assert.rejects(c.stats(), /older pier and has no stats op/);
    assert.equal((await c.status()).state, 'running');
    c.close();
    // new requests carry the version; the old shim ignored it
    assert.ok(s.seen.filter((r) => r.op !== 'status').every((r) => r.v === PROTOCOL_VERSION));
  } finally { s.close(); }
});

test('a version 2 shim: version(), and exec streams output then the exit, with stdin passed on', async () => {
  const s = await fakeShim((req, write, end) => {
    if (req.op === 'version') { write(jsonFrame(FRAME.REPLY, { ok: true, version: 2, ops: [] })); end(); return; }
    if (req.op === 'exec') {
      // output right behind the reply, in the same packet: the client must not lose it
      write(Buffer.concat([jsonFrame(FRAME.REPLY, { ok: true, pid: 42, tty: false }), encodeFrame(FRAME.STDOUT, 'out1\n')]));
      setTimeout(() => { write(encodeFrame(FRAME.STDERR, 'err\n')); write(jsonFrame(FRAME.EXIT, { exitCode: 3 })); end(); }, 20);
    }
  });
  try {
    const c = await ShimClient.connect(s.path);
    assert.equal(await c.version(), 2);
    const chunks: Record<string, string> = { out: '', err: '' };
    const sink = (k: string) => ({ write: (b: Buffer) => { chunks[k] += b.toString(); return true; } }) as unknown as NodeJS.WritableStream;
    let pid = 0;
    const r = await c.exec({ args: ['x'] }, { stdout: sink('out'), stderr: sink('err'), onStarted: (p) => { pid = p; } });
    assert.deepEqual(r, { exitCode: 3, pid: 42 });
    assert.equal(pid, 42);
    assert.deepEqual(chunks, { out: 'out1\n', err: 'err\n' });
    const execReq = s.seen.find((q) => q.op === 'exec') as { process: { args: string[]; detach?: boolean } };
    assert.deepEqual(execReq.process.args, ['x']);
    c.close();
  } finally { s.close(); }
});

test('checkExecSpec names what is wrong', () => {
  assert.equal(checkExecSpec({ args: ['sh'] }), undefined);
  assert.equal(checkExecSpec({ args: ['sh'], env: ['A=b'], cwd: '/x', user: { uid: 1, gid: 2, additionalGids: [3] }, terminal: true, consoleSize: { rows: 2, cols: 3 } }), undefined);
  assert.match(checkExecSpec({ args: [] })!, /args/);
  assert.match(checkExecSpec({ args: ['a\0b'] })!, /args/);
  assert.match(checkExecSpec({ args: ['sh'], env: ['NOEQUALS'] })!, /env/);
  assert.match(checkExecSpec({ args: ['sh'], cwd: 'rel' })!, /not absolute/);
  assert.match(checkExecSpec({ args: ['sh'], user: { uid: -1, gid: 0 } })!, /user/);
  assert.match(checkExecSpec({ args: ['sh'], terminal: 'yes' })!, /terminal/);
  assert.match(checkExecSpec({ args: ['sh'], consoleSize: { rows: 0, cols: 1 } })!, /consoleSize/);
  assert.match(checkExecSpec(null)!, /object/);
});

test('execFailureCode: docker\'s 127 for not found, 126 for cannot run', () => {
  assert.equal(execFailureCode('exec: "nope": executable file not found in $PATH'), 127);
  assert.equal(execFailureCode('exec: "/nope": stat /nope: No such file or directory'), 127);
  assert.equal(execFailureCode('exec: "/etc/passwd": permission denied'), 126);
  assert.equal(execFailureCode('chdir /nonexist: No such file or directory'), 126);
});
