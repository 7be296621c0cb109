/**
 * Removal ends every stream of a container, and an attached `pier run` honours SIGTERM (issue 10,
 * finding 6). Written as the attack: `pier run --rm` raced by `pier rm -f` at several delays, many
 * rounds; the run client must exit (it hung forever, ignoring SIGTERM), nothing may remain, and
 * pierd may hold no fd to a deleted file under the engine root (the removed log's disk space).
 * A hang fails through `within`'s bound, not through a timing assertion.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { PIER, testEngine, until, type TestEngine } from '../helpers/engine.ts';

let e: TestEngine;
before(() => { e = testEngine(); });
after(async () => { await e.close(); });

const BOUND = 20_000;

/** Resolves with `p`, or rejects after `ms` naming `what` (a hang fails the test). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: still running after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

interface Cli { child: ChildProcess; out: () => string; err: () => string; done: Promise<{ status: number | null; signal: NodeJS.Signals | null }> }

function cli(args: string[]): Cli {
  const child = spawn(PIER, args, { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d; });
  child.stderr!.on('data', (d: Buffer) => { err += d; });
  const done = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (status, signal) => resolve({ status, signal })));
  return { child, out: () => out, err: () => err, done };
}

/** Wait for a CLI to end within the bound; if it does not, kill it (the test has failed). */
async function ended(c: Cli, what: string): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
  try {
    return await within(c.done, BOUND, what);
  } finally {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  }
}

/** GET /v1/containers/NAME straight over the socket: the record, or undefined (404). */
function container(name: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(e.run, 'pier.sock'), method: 'GET', path: `/v1/containers/${name}` }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(res.statusCode === 200 ? JSON.parse(body) : undefined));
    });
    req.on('error', reject);
    req.end();
  });
}

/** DELETE /v1/containers/NAME?force=1 straight over the socket (404 too: the race may have ended it). */
function removeNow(name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(e.run, 'pier.sock'), method: 'DELETE', path: `/v1/containers/${name}?force=1&v=1` }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function untilAsync(fn: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + BOUND;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** pierd's fds that name a deleted file under the engine root. */
function deletedFds(): string[] {
  const pid = e.daemonPid();
  assert.ok(pid, 'pierd runs');
  const dir = `/proc/${pid}/fd`;
  return readdirSync(dir).flatMap((fd) => {
    try {
      const target = readlinkSync(join(dir, fd));
      return target.startsWith(e.root) && target.endsWith(' (deleted)') ? [`${fd} -> ${target}`] : [];
    } catch { return []; }
  });
}

describe('pier run --rm racing pier rm -f', () => {
  test('the run client always exits, nothing remains, pierd keeps no deleted log open', async (t) => {
    // `pier rm -f` after each delay; and the API's DELETE at once, which lands between create and
    // start (the CLI's own start-up is slower than the run's start)
    const plan: { delay: number; api: boolean }[] = [
      ...[0, 50, 100, 200, 400, 800].map((delay) => ({ delay, api: false })),
      ...[0, 0, 5, 20].map((delay) => ({ delay, api: true })),
    ];
    const rounds = 3;
    const seen = new Map<string, number>();
    let n = 0;
    for (let round = 0; round < rounds; round++) {
      for (const { delay, api } of plan) {
        const name = `race-${n++}`;
        const run = cli(['run', '--rm', '--name', name, 'busybox', 'sh', '-c', 'echo hi; sleep 30']);
        try {
          // the race starts once the container exists: from created (start not yet run) to running
          await untilAsync(async () => (await container(name)) !== undefined || run.child.exitCode !== null, `${name} to be created`);
          await new Promise((r) => setTimeout(r, delay));
          if (api) await within(removeNow(name), BOUND, `DELETE ${name}`);
          else await ended(cli(['rm', '-f', name]), `pier rm -f ${name}`);
          const r = await ended(run, `pier run --rm ${name} (${api ? 'DELETE' : 'rm -f'} after ${delay} ms)`);
          assert.notEqual(r.status, 0, `${name}: ${run.err()}`);
          assert.notEqual(r.status, null, `${name} ended by ${r.signal}`);
          const key = `${r.status}${run.err() ? ` (${run.err().trim()})` : ''}`;
          const k = key.replace(/[0-9a-f]{64}/, 'ID');
          seen.set(k, (seen.get(k) ?? 0) + 1);
          assert.equal(await container(name), undefined, `${name} is gone`);
        } finally {
          if (run.child.exitCode === null) run.child.kill('SIGKILL');
        }
      }
    }
    t.diagnostic(`run client exits: ${[...seen].map(([k, v]) => `${v}× ${k}`).join('; ')}`);
    assert.equal(e.ok(['ps', '-aq']), '');
    assert.deepEqual(deletedFds(), []);
  });

  test('rm -f of a paused container removes it (it is thawed for the SIGKILL)', async () => {
    e.ok(['run', '-d', '--name', 'frozen', 'busybox', 'sleep', '1000']);
    e.ok(['pause', 'frozen']);
    const r = await ended(cli(['rm', '-f', 'frozen']), 'pier rm -f of a paused container');
    assert.equal(r.status, 0);
    assert.equal(await container('frozen'), undefined);
  });

  test('logs -f of a container that is removed ends', async () => {
    for (let i = 0; i < 5; i++) {
      const name = `followed-${i}`;
      e.ok(['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'echo hi; sleep 30']);
      const logs = cli(['logs', '-f', name]);
      try {
        await until(() => logs.out().includes('hi'), 'the first line');
        e.ok(['rm', '-f', name]);
        const r = await ended(logs, `pier logs -f ${name}`);
        assert.notEqual(r.status, null);
        assert.equal(logs.out(), 'hi\n');
      } finally {
        if (logs.child.exitCode === null) logs.child.kill('SIGKILL');
      }
    }
    assert.deepEqual(deletedFds(), []);
  });
});

describe('an attached pier run and its signals', () => {
  const running = (name: string) => untilAsync(async () => (await container(name))?.state.status === 'running', `${name} to run`);

  test('SIGTERM is proxied to the container; its exit ends the CLI (143)', async () => {
    // --init: a PID 1 without a handler never gets SIGTERM (the kernel drops it), as with docker
    const run = cli(['run', '--init', '--name', 'sig', 'busybox', 'sleep', '30']);
    try {
      await running('sig');
      run.child.kill('SIGTERM');
      const r = await ended(run, 'pier run after SIGTERM');
      assert.equal(r.status, 143, run.err());
      assert.equal(e.inspect('sig').state.exitCode, 143);
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      e.pier(['rm', '-f', 'sig']);
    }
  });

  test('the third SIGTERM ends the CLI even when the container takes them (docker\'s rule)', async () => {
    const run = cli(['run', '--name', 'stubborn', 'busybox', 'sh', '-c', 'trap "echo got" TERM; echo up; while :; do sleep 0.1; done']);
    try {
      await until(() => run.out().includes('up'), 'the container to trap TERM');
      for (let i = 1; i <= 2; i++) {
        run.child.kill('SIGTERM');
        await until(() => run.out().split('got').length - 1 === i, `proxied SIGTERM ${i}`);
      }
      run.child.kill('SIGTERM');
      const r = await ended(run, 'pier run after the third SIGTERM');
      assert.equal(r.status, 143);
      assert.equal((await container('stubborn'))?.state.status, 'running', 'the container is left as it is');
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      e.pier(['rm', '-f', 'stubborn']);
    }
  });

  test('SIGTERM ends the CLI (143) when pierd is stopped meanwhile and cannot take the signal', async () => {
    const run = cli(['run', '--name', 'orphaned', 'busybox', 'sleep', '30']);
    const pid = e.daemonPid()!;
    try {
      await running('orphaned');
      process.kill(pid, 'SIGSTOP');
      run.child.kill('SIGTERM');
      const r = await ended(run, 'pier run after SIGTERM with pierd stopped');
      assert.equal(r.status, 143, run.err());
    } finally {
      process.kill(pid, 'SIGCONT');
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      e.pier(['rm', '-f', 'orphaned']);
    }
  });

  test('rm -f of an attached run (no --rm) ends its CLI with the kill\'s status, 137', async () => {
    const run = cli(['run', '--name', 'gone', 'busybox', 'sh', '-c', 'trap "" TERM; echo up; sleep 30']);
    try {
      await until(() => run.out().includes('up'), 'the container to run');
      e.ok(['rm', '-f', 'gone']);
      const r = await ended(run, 'pier run of a removed container');
      assert.equal(r.status, 137, run.err());
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  });
});
