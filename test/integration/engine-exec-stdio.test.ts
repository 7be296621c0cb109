/**
 * `pier exec` must not hand the caller's fds to the container (issue 10, finding 4). Written as the
 * attack: the exec'd command leaves a process behind that goes on reading the caller's stdin, or
 * writing to its stdout/stderr, after `pier exec` has returned. With pipes of its own that the CLI
 * closes when the exec'd process exits, the left-behind process reads EOF and its writes fail.
 * Also: what the process wrote before it exited is all delivered, stdin's EOF is passed on, -d gets
 * /dev/null, -t gets a pty (the caller's fds stay on the host), and the same through runc.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, writeSync } from 'node:fs';
import { fifoDir, inputFifo, removeDir } from '../../src/common/fifo.ts';
import { PIER, testEngine, until, type TestEngine } from '../helpers/engine.ts';

const RUNC = '/usr/sbin/runc';
let e: TestEngine;

before(() => {
  e = testEngine();
  // --init: processes left behind are reaped, so "no cat runs" below is not fooled by zombies
  e.ok(['run', '-d', '--init', '--name', 'box', 'busybox', 'sleep', '100000']);
  if (existsSync(RUNC)) e.ok(['run', '-d', '--init', '--name', 'rcbox', '--runtime', 'runc', 'busybox', 'sleep', '100000']);
});

/**
 * A shell gives a background job /dev/null as stdin: the left-behind reader takes the exec's stdin
 * through fd 3 instead, as any program that keeps its stdin would.
 */
const STEAL = 'exec 3<&0; (sleep 1; cat <&3 > /stolen) & exit 0';
const FDS = 'for n in 0 1 2; do readlink /proc/$$/fd/$n; done';
after(async () => { await e.close(); });

/** Resolves with what `fn` resolves, or rejects after `ms` naming `what` (a hang fails the test). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

/** A pipe the test keeps writing to after the process it was given to has exited. */
function heldPipe(): { ours: number; theirs: number } {
  const dir = fifoDir();
  try {
    const f = inputFifo(dir, 'stdin');
    return { ours: f.ours, theirs: f.theirs };
  } finally {
    removeDir(dir);
  }
}

/** Write to a held pipe; EPIPE means nobody at all holds its read end (the best outcome). */
function offer(fd: number, text: string): void {
  try { writeSync(fd, text); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err; }
}

const exited = (c: ChildProcess) => new Promise<number | null>((resolve) => c.once('exit', (code) => resolve(code)));

/** Every byte a readable end of ours receives, and when it reaches EOF. */
function collect(c: ChildProcess, which: 'stdout' | 'stderr'): { text: () => string; eof: Promise<void> } {
  let text = '';
  const s = c[which]!;
  s.setEncoding('utf8');
  s.on('data', (d: string) => { text += d; });
  return { text: () => text, eof: new Promise((resolve) => s.once('end', resolve)) };
}

/** Remove what a round left in the container and wait until no left-behind process of it runs. */
async function settle(ctr: string, file: string): Promise<string> {
  // the left-behind reader is `cat`; once none runs, what it wrote is all there is
  await until(() => e.pier(['exec', ctr, 'sh', '-c', `test -e ${file} && ! pidof cat`]).status === 0, `the left-behind cat in ${ctr} to finish`, 20_000);
  const got = e.ok(['exec', ctr, 'cat', file]);
  e.ok(['exec', ctr, 'rm', '-f', file]);
  return got;
}

for (const ctr of ['box', 'rcbox']) {
  describe(`exec without -t (${ctr === 'box' ? "pier's runtime" : 'runc'})`, () => {
    const skip = ctr === 'rcbox' && !existsSync(RUNC) ? 'no runc here' : false;

    test('a process left behind cannot read what the caller types after exec returned', { skip }, async () => {
      // the test holds the CLI's stdin (a pipe of its own, not the child's, which Node closes at its
      // exit): once the CLI is gone, anyone reading it is the left-behind cat
      const held = heldPipe();
      const c = spawn(PIER, ['exec', '-i', ctr, 'sh', '-c', STEAL], { env: e.env, stdio: [held.theirs, 'ignore', 'ignore'] });
      closeSync(held.theirs);
      try {
        assert.equal(await within(exited(c), 20_000, 'pier exec'), 0);
        offer(held.ours, 'secret\n');
      } finally {
        // closing our end lets a cat that holds it finish; the check below then waits for no cat
        closeSync(held.ours);
      }
      const got = await settle(ctr, '/stolen');
      assert.ok(!got.includes('secret'), `the left-behind process read the caller's stdin: ${JSON.stringify(got)}`);
    });

    // runc in the foreground relays through pipes of its own and returns only once they reach EOF:
    // the left-behind writer keeps `exec` from returning (it never gets the caller's fds either way)
    const runcWaits = ctr === 'rcbox' ? 'runc exec returns only when its own pipes reach EOF' : skip;
    test('a process left behind cannot write to the caller: its stdout/stderr reach EOF when exec returns', { skip: runcWaits }, async () => {
      const c = spawn(PIER, ['exec', ctr, 'sh', '-c', '(sleep 1; echo LEAK; echo LEAK >&2; sleep 30) & echo before; exit 0'], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
      const out = collect(c, 'stdout'), err = collect(c, 'stderr');
      assert.equal(await within(exited(c), 20_000, 'pier exec'), 0);
      // the CLI closed its ends and nobody else holds them: EOF, not after the 31 s of the leftover
      await within(Promise.all([out.eof, err.eof]), 15_000, 'EOF on the caller\'s stdout/stderr');
      assert.equal(out.text(), 'before\n');
      assert.equal(err.text(), '');
    });

    test('what the process wrote before it exited is all delivered, with its status', { skip }, async () => {
      const c = spawn(PIER, ['exec', ctr, 'sh', '-c', 'seq 1 20000; seq 1 3000 >&2; exit 3'], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
      const out = collect(c, 'stdout'), err = collect(c, 'stderr');
      assert.equal(await within(exited(c), 20_000, 'pier exec'), 3);
      await within(Promise.all([out.eof, err.eof]), 15_000, 'EOF');
      const seq = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join('');
      assert.equal(out.text(), seq(20000));
      assert.equal(err.text(), seq(3000));
    });

    test('-i: stdin is relayed to its end (EOF included); without -i it is /dev/null', { skip }, async () => {
      const big = 'x'.repeat(1 << 20);
      const r = await e.pierAsync(['exec', '-i', ctr, 'sh', '-c', 'wc -c; echo done'], { input: big });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.replace(/ +/g, ''), `${big.length}\ndone\n`);
      const none = await e.pierAsync(['exec', ctr, 'sh', '-c', 'readlink /proc/self/fd/0; wc -c'], { input: 'ignored\n' });
      // runc gives the process a pipe it feeds from its own stdin (here /dev/null) even without -i
      assert.match(none.stdout.replace(/ +/g, ''), ctr === 'box' ? /^\/dev\/null\n0\n$/ : /^pipe:\[\d+\]\n0\n$/);
    });

    test('-d: the process gets /dev/null, not the caller\'s fds', { skip }, async () => {
      e.ok(['exec', '-d', ctr, 'sh', '-c', `(${FDS}) > /fds.tmp; mv /fds.tmp /fds`]);  // $$: the exec'd shell's own fds
      await until(() => e.pier(['exec', ctr, 'test', '-e', '/fds']).status === 0, '-d to write /fds');
      assert.equal(e.ok(['exec', ctr, 'cat', '/fds']), '/dev/null\n/dev/null\n/dev/null\n');
      e.ok(['exec', ctr, 'rm', '/fds']);
    });
  });
}

describe('exec -t', () => {
  test('the process gets a pty; a process left behind reads neither stdin nor writes to stdout after exec returned', async () => {
    const fds = await e.pierAsync(['exec', '-t', 'box', 'sh', '-c', FDS]);
    assert.equal(fds.status, 0, fds.stderr);
    assert.match(fds.stdout, /^(\/dev\/pts\/\d+\r?\n){3}$/);
    const held = heldPipe();
    const c = spawn(PIER, ['exec', '-t', 'box', 'sh', '-c', 'trap "" HUP; exec 3<&0; (sleep 1; cat <&3 > /stolen; echo LEAK; sleep 30) & exit 0'], { env: e.env, stdio: [held.theirs, 'pipe', 'pipe'] });
    closeSync(held.theirs);
    const out = collect(c, 'stdout');
    try {
      assert.equal(await within(exited(c), 20_000, 'pier exec -t'), 0);
      offer(held.ours, 'secret\n');
    } finally {
      closeSync(held.ours);
    }
    await within(out.eof, 15_000, 'EOF on the caller\'s stdout');
    assert.ok(!out.text().includes('LEAK'));
    const got = await settle('box', '/stolen');
    assert.ok(!got.includes('secret'), `the left-behind process read the caller's stdin: ${JSON.stringify(got)}`);
  });
});
