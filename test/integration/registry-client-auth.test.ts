/**
 * Basic auth against docker-registry 2.8.2 with htpasswd: a push without login fails with one
 * clear line; `pier login` (bad password refused, nothing stored) then push and pull succeed.
 * Docker token auth (Bearer challenge, token from the realm with basic credentials) through a
 * small token proxy in front of a second registry.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pierAsync } from '../helpers/pier.ts';
import { startRegistry, startTokenProxy, type Registry, type TokenProxy } from '../helpers/registry.ts';
import { ImageService } from '../../src/image/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pier-regauth-'));
const root = join(tmp, 'a');
let reg: Registry;
let open: Registry;
let tokens: TokenProxy;

const pier = pierAsync;

before(async () => {
  reg = await startRegistry(join(tmp, 'registry'), { htpasswd: ['pieruser', 's3cret'] });
  open = await startRegistry(join(tmp, 'open'));
  tokens = await startTokenProxy(open.host, 'tokuser', 'tokpass');
  await new ImageService({ root }).bootstrap('busybox');
});

after(async () => {
  await tokens?.stop();
  await open?.stop();
  await reg?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('push without login fails with one line naming the problem', async () => {
  const r = await pier(root, ['push', 'busybox:latest', `${reg.host}/private/bb:1`]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^pier: push 127\.0\.0\.1:\d+\/private\/bb:1: UNAUTHORIZED: [^\n]*pier login 127\.0\.0\.1:\d+[^\n]*\n$/);
  const p = await pier(join(tmp, 'b'), ['pull', `${reg.host}/private/bb:1`]);
  assert.equal(p.status, 1);
  assert.match(p.stderr, /^pier: pull [^\n]*UNAUTHORIZED[^\n]*\n$/);
});

test('login with a wrong password is refused and stores nothing', async () => {
  const r = await pier(root, ['login', reg.host, '-u', 'pieruser', '-p', 'wrong']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^pier: login 127\.0\.0\.1:\d+: UNAUTHORIZED: [^\n]*\n$/);
  assert.equal(existsSync(join(root, 'auth.json')), false);
});

test('login then push and pull succeed; auth.json is 0600 in docker format', async () => {
  const l = await pier(root, ['login', reg.host, '-u', 'pieruser', '--password-stdin'], 's3cret\n');
  assert.equal(l.status, 0, l.stderr);
  assert.equal(l.stdout, 'Login Succeeded\n');
  const path = join(root, 'auth.json');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const file = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(file.auths[reg.host].auth, Buffer.from('pieruser:s3cret').toString('base64'));
  const push = await pier(root, ['push', 'busybox:latest', `${reg.host}/private/bb:1`]);
  assert.equal(push.status, 0, push.stderr);
  assert.match(push.stdout, /digest: sha256:/);
  // Pull into the same root (credentials there) under the remote name.
  const pull = await pier(root, ['pull', `${reg.host}/private/bb:1`]);
  assert.equal(pull.status, 0, pull.stderr);
});

test('Bearer: without login the token server refuses; after login tokens are fetched with the scope', async () => {
  const r2 = join(tmp, 'tok');
  await new ImageService({ root: r2 }).bootstrap('busybox');
  const dest = `${tokens.host}/tok/bb:1`;
  const denied = await pier(r2, ['push', 'busybox:latest', dest]);
  assert.equal(denied.status, 1);
  assert.match(denied.stderr, /^pier: push [^\n]*UNAUTHORIZED: token server [^\n]* answered 401 \(pier login [^\n]*\)\n$/);
  const l = await pier(r2, ['login', tokens.host, '-u', 'tokuser', '-p', 'tokpass']);
  assert.equal(l.status, 0, l.stderr);
  const push = await pier(r2, ['push', 'busybox:latest', dest]);
  assert.equal(push.status, 0, push.stderr);
  assert.ok(tokens.tokenRequests.some((q) => q.getAll('scope').includes('repository:tok/bb:pull,push') && q.get('service') === 'pier-test'));
  const pull = await pier(r2, ['pull', dest]);
  assert.equal(pull.status, 0, pull.stderr);
});
