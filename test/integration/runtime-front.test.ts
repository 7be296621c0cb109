/**
 * bin/pier-runtime's native front (native/front.c) against the TypeScript CLI it stands in for:
 * the same commands through both, compared byte for byte (stdout, stderr, exit status).
 * PIER_RUNTIME_FRONT=native makes the front fail (exit 125) instead of handing over, so a passing
 * comparison proves the front served the call itself; PIER_RUNTIME_FRONT=0 is the TypeScript CLI.
 * Commands with effects run on twin containers (one per side) and compare with the id replaced.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseSpec, makeBundle } from '../helpers/rootfs.ts';
import { PIER_RUNTIME, cgroupDirsMatching, pr, prOk } from '../helpers/pier.ts';

const root = mkdtempSync(join(tmpdir(), 'pier-front-root-'));
const dirs: string[] = [root];
after(() => {
  for (const id of prOk(root, ['list', '--quiet']).split('\n').filter(Boolean)) pr(root, ['delete', '--force', id]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Side = 'front' | 'ts';
const ENV: Record<Side, string> = { front: 'native', ts: '0' };

function run(side: Side, args: string[], opts: { root?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(PIER_RUNTIME, ['--root', opts.root ?? root, ...args], {
    encoding: 'utf8', timeout: 30_000, env: { ...process.env, PIER_RUNTIME_FRONT: ENV[side] },
  });
}

/** Both sides on the same arguments (no effects, or the same effect-free error): identical results. */
function same(args: string[], opts: { root?: string } = {}): SpawnSyncReturns<string> {
  const f = run('front', args, opts), t = run('ts', args, opts);
  assert.notEqual(f.status, 125, `the front handed over ${args.join(' ')}: ${f.stderr}`);
  assert.deepEqual({ status: f.status, stdout: f.stdout, stderr: f.stderr }, { status: t.status, stdout: t.stdout, stderr: t.stderr },
    `pier-runtime ${args.join(' ')}`);
  return f;
}

/** `args(id)` on twin containers, front on the first, TypeScript on the second; results equal with ids swapped. */
function twins(ids: [string, string], args: (id: string) => string[]): void {
  const f = run('front', args(ids[0])), t = run('ts', args(ids[1]));
  assert.notEqual(f.status, 125, `the front handed over ${args(ids[0]).join(' ')}: ${f.stderr}`);
  const norm = (s: string, id: string) => s.split(id).join('<id>');
  assert.deepEqual(
    { status: f.status, stdout: norm(f.stdout, ids[0]), stderr: norm(f.stderr, ids[0]) },
    { status: t.status, stdout: norm(t.stdout, ids[1]), stderr: norm(t.stderr, ids[1]) },
    `pier-runtime ${args('<id>').join(' ')}`);
}

// Annotations exercise the byte-for-byte copy of JSON strings: escapes, non-ASCII, key order.
const ANNOTATIONS = { 'org.example/b': 'quote " backslash \\ tab \t esc \u001b', 'a.first': 'é ü ✓ 𝄞', 'z': '', 'line\u2028sep': '/slash/' };

function bundle(args: string[], extra: Partial<ReturnType<typeof baseSpec>> = {}): string {
  const b = makeBundle({ ...baseSpec(args), annotations: ANNOTATIONS, ...extra });
  dirs.push(b);
  return b;
}

const created = (b: string, id: string) => prOk(root, ['create', '--bundle', b, id]);
const status = (id: string) => JSON.parse(prOk(root, ['state', id])).status as string;
async function until(what: string, fn: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('errors before any container exists: not found, bad signal, bad ps format, --log text/json', () => {
  for (const cmd of [['state', 'nope'], ['start', 'nope'], ['kill', 'nope'], ['kill', 'nope', 'KILL'], ['delete', 'nope'], ['ps', 'nope'],
    ['ps', '--format', 'json', 'nope'], ['kill', 'nope', 'SIGFOO'], ['kill', 'nope', '0'], ['kill', 'nope', '65'], ['kill', 'nope', 'RTMIN-2'],
    ['kill', 'nope', 'tab\there'], ['kill', 'nope', ''], ['kill', 'nope', '"q"'], ['delete', '-f=maybe', 'nope']]) {
    if (cmd.includes('-f=maybe')) {
      // a malformed flag is the TypeScript CLI's to word: the front hands it over
      assert.equal(run('front', cmd).status, 125);
      continue;
    }
    same(cmd);
  }
  same(['delete', '--force', 'nope']);
  same(['delete', '-f', 'nope']);
  const log = join(root, 'log');
  for (const fmt of ['text', 'json']) {
    const f = run('front', ['--log', log, '--log-format', fmt, 'state', 'nope']);
    const fromFront = readFileSync(log, 'utf8');
    rmSync(log);
    const t = run('ts', ['--log', log, '--log-format', fmt, 'state', 'nope']);
    const fromTs = readFileSync(log, 'utf8');
    rmSync(log);
    const time = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g;
    assert.equal(f.status, 1);
    assert.deepEqual([f.status, f.stderr.replace(time, 'T'), fromFront.replace(time, 'T')], [t.status, t.stderr.replace(time, 'T'), fromTs.replace(time, 'T')]);
  }
});

test('state, start, kill, ps, delete of created, running and stopped twins', async () => {
  // sh stays the init (a command follows the sleeps), and its command line is not ASCII: ps lines
  // the front keeps must come out as the TypeScript CLI writes them
  const b = bundle(['sh', '-c', 'sleep 300 & sleep 300; : é ✓ 𝄞']);
  const ids: [string, string] = ['fr-a', 'fr-b'];
  for (const id of ids) created(b, id);
  for (const id of ids) same(['state', id]);
  assert.equal(status(ids[0]), 'created');
  const st = JSON.parse(run('front', ['state', ids[0]]).stdout);
  assert.deepEqual(st.annotations, ANNOTATIONS);
  twins(ids, (id) => ['start', id]);
  for (const id of ids) assert.equal(status(id), 'running');
  for (const id of ids) same(['state', id]);
  same(['start', ids[0]]); // running: an error, the same on both sides
  same(['delete', ids[0]]); // running without --force: an error
  await until('sh and both sleeps', () => JSON.parse(prOk(root, ['ps', '--format', 'json', ids[0]])).length === 3);
  same(['ps', '--format', 'json', ids[0]]);
  same(['ps', '-f', 'json', ids[0]]);
  same(['ps', ids[0]]);
  same(['ps', ids[0], '-o', 'pid,comm']);
  same(['ps', ids[0], '-o', 'pid,args']);
  assert.match(run('front', ['ps', ids[0]]).stdout, /: é ✓ 𝄞/);
  same(['ps', '--format', 'yaml', ids[0]]);
  for (const sig of ['CONT', 'SIGCONT', 'sigcont', '18', ' 18 ', 'cont']) twins(ids, (id) => ['kill', id, sig]);
  twins(ids, (id) => ['kill', '--all', id, 'CONT']);
  for (const id of ids) assert.equal(status(id), 'running');
  twins(ids, (id) => ['kill', id, 'KILL']);
  for (const id of ids) await until(`${id} stopped`, () => status(id) === 'stopped');
  for (const id of ids) same(['state', id]);
  same(['kill', ids[0], 'TERM']); // stopped: container not running
  same(['start', ids[0]]); // stopped: cannot start
  twins(ids, (id) => ['delete', id]);
  for (const id of ids) {
    assert.equal(existsSync(join(root, id)), false, `${id} state dir removed`);
    assert.deepEqual(cgroupDirsMatching(new RegExp(`^${id}$`)), [], `${id} cgroups removed`);
  }
  same(['state', ids[0]]);
});

test('kill by number and RT names; delete --force of running and of created twins', async () => {
  const b = bundle(['sleep', '300']);
  const ids: [string, string] = ['fr-c', 'fr-d'];
  for (const id of ids) created(b, id);
  // created: the init waits on exec.fifo; delete (no --force needed) kills it
  const made: [string, string] = ['fr-e', 'fr-f'];
  for (const id of made) created(b, id);
  twins(made, (id) => ['delete', id]);
  for (const id of made) assert.equal(existsSync(join(root, id)), false);
  for (const id of ids) prOk(root, ['start', id]);
  // the init is `sleep` as pid 1 of its namespace: signals without a handler are ignored there
  for (const sig of ['RTMIN', 'RTMIN+3', 'SIGRTMAX-1', '10', 'USR2', 'SIGWINCH']) twins(ids, (id) => ['kill', id, sig]);
  for (const id of ids) assert.equal(status(id), 'running');
  twins(ids, (id) => ['delete', '--force', id]);
  for (const id of ids) {
    assert.equal(existsSync(join(root, id)), false);
    assert.deepEqual(cgroupDirsMatching(new RegExp(`^${id}$`)), []);
  }
});

test('paused: state and refusals from the front; what thaws is handed over', async () => {
  const b = bundle(['sleep', '300']);
  created(b, 'fr-p');
  prOk(root, ['start', 'fr-p']);
  prOk(root, ['pause', 'fr-p']);
  assert.equal(status('fr-p'), 'paused');
  same(['state', 'fr-p']);
  same(['start', 'fr-p']);
  same(['delete', 'fr-p']);
  same(['ps', '--format', 'json', 'fr-p']);
  same(['kill', 'fr-p', 'CONT']);
  assert.equal(run('front', ['kill', '--all', 'fr-p', 'KILL']).status, 125, 'kill --all KILL of a paused container thaws it: not the front\'s');
  assert.equal(run('front', ['delete', '--force', 'fr-p']).status, 125);
  assert.equal(status('fr-p'), 'paused', 'nothing done before the hand-over');
  prOk(root, ['delete', '--force', 'fr-p']);
  assert.equal(existsSync(join(root, 'fr-p')), false);
  assert.deepEqual(cgroupDirsMatching(/^fr-p$/), []);
});

test('the front hands over what it does not serve, and the TypeScript CLI does it', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'pier-front-hook-')), 'poststop.json');
  dirs.push(join(out, '..'));
  const b = bundle(['sleep', '300'], { hooks: { poststop: [{ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}`] }] } });
  created(b, 'fr-hook');
  prOk(root, ['start', 'fr-hook']);
  // a failing ps(1) is the TypeScript CLI's to report (its error wording is Node's)
  const bad = ['ps', 'fr-hook', '--no-such-ps-option'];
  assert.equal(run('front', bad).status, 125);
  const viaFront = spawnSync(PIER_RUNTIME, ['--root', root, ...bad], { encoding: 'utf8' }), ts = run('ts', bad);
  assert.notEqual(ts.status, 0);
  assert.deepEqual([viaFront.status, viaFront.stdout, viaFront.stderr], [ts.status, ts.stdout, ts.stderr]);
  // delete with a poststop hook: not the front's; with PIER_RUNTIME_FRONT=native that is an error
  const r = run('front', ['delete', '--force', 'fr-hook']);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /would hand over to the TypeScript CLI: poststop hooks/);
  assert.equal(status('fr-hook'), 'running', 'nothing done before the hand-over');
  // by default the front execs the TypeScript CLI, which runs the hook
  prOk(root, ['delete', '--force', 'fr-hook']);
  assert.equal(JSON.parse(readFileSync(out, 'utf8')).status, 'stopped');
  assert.equal(existsSync(join(root, 'fr-hook')), false);
  // commands the front does not serve go through unchanged
  assert.match(prOk(root, ['--version']), /^pier-runtime version /);
  assert.equal(run('front', ['list']).status, 125);
  assert.equal(pr(root, ['list', '--format', 'json']).status, 0);
  // a record this parser does not take (hand-edited, not JSON.stringify's form) is handed over too
  created(bundle(['sleep', '300']), 'fr-odd');
  const file = join(root, 'fr-odd', 'state.json');
  writeFileSync(file, readFileSync(file, 'utf8').replace('"bundle":"', '"bundle":"\\/'));
  assert.equal(run('front', ['state', 'fr-odd']).status, 125);
  assert.equal(JSON.parse(prOk(root, ['state', 'fr-odd'])).bundle.startsWith('/'), true);
  prOk(root, ['delete', '--force', 'fr-odd']);
});

test('state of hand-made records: every string form JSON.stringify writes, and forms it does not', () => {
  // No container needed: pid 0 is stopped. Strings cover control characters, quotes, backslashes,
  // U+2028, astral characters and lone surrogates (JSON.stringify escapes those; the front hands them over).
  const fake = mkdtempSync(join(tmpdir(), 'pier-front-fake-'));
  dirs.push(fake);
  let seed = 42;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const pool = ['a', 'Z', ' ', '"', '\\', '/', '\u0000', '\u0001', '\b', '\t', '\n', '\f', '\r', '\u001f', '\u007f', 'é', '\u2028', '\u2029',
    '✓', '\ud834\udd1e', '\ud800', '\udfff', '\ufeff', '0'];
  const str = () => Array.from({ length: rnd(6) }, () => pool[rnd(pool.length)]).join('');
  let served = 0;
  for (let i = 0; i < 60; i++) {
    const id = `fake-${i}`;
    const annotations: Record<string, string> = {};
    for (let k = rnd(4); k > 0; k--) annotations[`k${str()}`] = str();
    const rec = { id, bundle: `/b/${str()}`, rootfs: str(), pid: 0, created: str(), owner: str(), phase: 'created', annotations, config: {} };
    const text = i % 3 === 0 ? JSON.stringify(rec, null, i % 2 ? '\t' : 2) : JSON.stringify(rec);
    mkdirSync(join(fake, id));
    writeFileSync(join(fake, id, 'state.json'), text);
    const t = run('ts', ['state', id], { root: fake });
    const f = run('front', ['state', id], { root: fake });
    if (f.status === 125) {
      assert.match(f.stderr, /canonical form|record strings/, `${id}: ${f.stderr}`);
      assert.match(text, /\\ud[89a-f]/, `${id}: only lone surrogates are not canonical here`);
      const d = spawnSync(PIER_RUNTIME, ['--root', fake, 'state', id], { encoding: 'utf8' });
      assert.deepEqual([d.status, d.stdout, d.stderr], [t.status, t.stdout, t.stderr]);
      continue;
    }
    served++;
    assert.deepEqual([f.status, f.stdout, f.stderr], [t.status, t.stdout, t.stderr], text);
  }
  assert.ok(served > 20, `the front served ${served} of 60`);
});
