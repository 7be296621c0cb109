/**
 * src/image/build/anchored.ts: paths resolved one component at a time from a root fd, with
 * openat2(RESOLVE_IN_ROOT) semantics — absolute links restart at the root, `..` stops at it — and
 * never a host file outside the root, whatever the links say. Runs in a temp dir (no root needed).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResolveError, at, lstatAt, openRoot, walkAt, type Entry, type WalkOptions } from '../../src/image/build/anchored.ts';

let top = '';
let root = '';
let fd = -1;
const FOLLOW: WalkOptions = { followLast: true, followInner: true };

before(() => {
  top = mkdtempSync(join(tmpdir(), 'pier-anchored-'));
  root = join(top, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'usr', 'lib'), { recursive: true });
  writeFileSync(join(root, 'etc', 'passwd'), 'inside\n');
  writeFileSync(join(top, 'outside'), 'outside\n');
  symlinkSync('/etc', join(root, 'abs'));               // absolute: the root's /etc
  symlinkSync('../../../../etc', join(root, 'up'));     // climbs: stops at the root
  symlinkSync('../outside', join(root, 'out'));         // the file beside the root: not reachable
  symlinkSync('usr/lib', join(root, 'lib'));
  symlinkSync('loop', join(root, 'loop'));
  symlinkSync('/', join(root, 'slash'));
  fd = openRoot(root);
});
after(() => { closeSync(fd); rmSync(top, { recursive: true, force: true }); });

function read(e: Entry): string {
  try { return readFileSync(at(e.dir, e.name), 'utf8'); } finally { closeSync(e.dir); }
}

function code(fn: () => unknown): { code: string; escaped: boolean; at: string } {
  try { fn(); } catch (err) {
    assert.ok(err instanceof ResolveError, String(err));
    return { code: err.code, escaped: err.escaped, at: err.at };
  }
  assert.fail('resolved');
}

test('absolute and climbing links resolve inside the root', () => {
  assert.equal(read(walkAt(fd, 'abs/passwd', FOLLOW)), 'inside\n');
  assert.equal(read(walkAt(fd, 'up/passwd', FOLLOW)), 'inside\n');
  assert.equal(read(walkAt(fd, '/../../etc/passwd', FOLLOW)), 'inside\n');
});

test('a link to a file outside the root is not found, and says it tried to leave', () => {
  assert.deepEqual(code(() => walkAt(fd, 'out', FOLLOW)), { code: 'ENOENT', escaped: true, at: '/outside' });
  assert.deepEqual(code(() => walkAt(fd, 'abs/shadow', FOLLOW)), { code: 'ENOENT', escaped: true, at: '/etc/shadow' });
  assert.deepEqual(code(() => walkAt(fd, 'nothing', FOLLOW)), { code: 'ENOENT', escaped: false, at: '/nothing' });
});

test('a link to / is the root itself', () => {
  const e = walkAt(fd, 'slash', FOLLOW);
  try {
    assert.equal(e.name, '.');
    assert.ok(lstatAt(e.dir, 'etc')?.isDirectory());
  } finally { closeSync(e.dir); }
});

test('followLast: false gives the link itself; followInner: false refuses a link on the way', () => {
  const e = walkAt(fd, 'abs', { followLast: false, followInner: true });
  try { assert.ok(e.st.isSymbolicLink()); } finally { closeSync(e.dir); }
  assert.equal(code(() => walkAt(fd, 'lib/x', { followLast: false, followInner: false })).code, 'ENOTDIR');
  assert.equal(code(() => walkAt(fd, 'etc/passwd/x', FOLLOW)).code, 'ENOTDIR');
  assert.equal(code(() => walkAt(fd, 'loop', FOLLOW)).code, 'ELOOP');
});

test('create makes missing directories inside the root, through its links', () => {
  closeSync(walkAt(fd, 'abs/made/deeper', { ...FOLLOW, create: 0o755 }).dir);
  assert.ok(existsSync(join(root, 'etc', 'made', 'deeper')));
  closeSync(walkAt(fd, 'out-dir/../lib/new', { ...FOLLOW, create: 0o755 }).dir);
  assert.ok(existsSync(join(root, 'usr', 'lib', 'new')));
  assert.ok(!existsSync(join(top, 'new')));
});

test('at() takes one component only', () => {
  for (const bad of ['', '..', 'a/b']) assert.throws(() => at(fd, bad), /not a single path component/);
});
