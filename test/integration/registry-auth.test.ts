/**
 * Registry server auth, in process: htpasswd Basic (anonymous 401 with a Basic challenge, good and
 * wrong credentials, {SHA} hashes, access-file DENIED); the built-in token issuer (pier login, push
 * and pull through it, a pull-only user refused with insufficient_scope, expired / foreign-signed /
 * wrong-audience tokens refused, anonymous pull of a public repository); /metrics and access log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pierAsync } from '../helpers/pier.ts';
import { startRegistry, TokenKey, type RunningRegistry } from '../../src/registry/server/index.ts';
import { ImageService } from '../../src/image/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pier-regauth-srv-'));
const root = join(tmp, 'root');
let basicReg: RunningRegistry;
let tokenReg: RunningRegistry;
const basicLog: string[] = [];

function htpasswd(args: string[]): string {
  const r = spawnSync('htpasswd', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
  return r.stdout;
}

const pier = pierAsync;

const basicAuth = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

before(async () => {
  const pw = join(tmp, 'htpasswd');
  writeFileSync(pw, htpasswd(['-Bbn', 'alice', 'alice-pw']) + htpasswd(['-Bbn', 'bob', 'bob-pw']) + htpasswd(['-sbn', 'carol', 'carol-pw']));
  writeFileSync(join(tmp, 'basic-access.json'), JSON.stringify({ '*': { '**': ['pull'] }, alice: { '**': ['*'] } }));
  writeFileSync(join(tmp, 'token-access.json'), JSON.stringify({
    alice: { 'library/**': ['pull', 'push'] },
    bob: { 'library/**': ['pull'] },
    anonymous: { 'public/*': ['pull'] },
  }));
  basicReg = await startRegistry({
    listen: '127.0.0.1:0', storage: join(tmp, 'basic'),
    auth: { htpasswd: pw, access: join(tmp, 'basic-access.json') },
    accessLog: (l) => basicLog.push(l),
  });
  tokenReg = await startRegistry({
    listen: '127.0.0.1:0', storage: join(tmp, 'token'),
    auth: { htpasswd: pw, access: join(tmp, 'token-access.json'), tokenIssuer: true, service: 'pier-test' },
  });
  await new ImageService({ root }).bootstrap('busybox');
});

after(async () => {
  await basicReg?.close();
  await tokenReg?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('htpasswd: anonymous gets 401 with a Basic challenge and the spec error JSON', async () => {
  const r = await fetch(`${basicReg.url}/v2/`);
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Basic realm="[^"]+"/);
  const body = await r.json() as { errors: { code: string }[] };
  assert.equal(body.errors[0].code, 'UNAUTHORIZED');
});

test('htpasswd: good bcrypt and {SHA} credentials 200, wrong 401', async () => {
  assert.equal((await fetch(`${basicReg.url}/v2/`, { headers: { authorization: basicAuth('alice', 'alice-pw') } })).status, 200);
  assert.equal((await fetch(`${basicReg.url}/v2/`, { headers: { authorization: basicAuth('carol', 'carol-pw') } })).status, 200);
  const bad = await fetch(`${basicReg.url}/v2/`, { headers: { authorization: basicAuth('alice', 'nope') } });
  assert.equal(bad.status, 401);
  assert.match(bad.headers.get('www-authenticate') ?? '', /^Basic /);
  assert.equal((await fetch(`${basicReg.url}/v2/`, { headers: { authorization: basicAuth('mallory', 'x') } })).status, 401);
});

test('htpasswd + access file: a pull-only user gets 403 DENIED on push', async () => {
  const r = await fetch(`${basicReg.url}/v2/x/y/blobs/uploads/`, { method: 'POST', headers: { authorization: basicAuth('bob', 'bob-pw') } });
  assert.equal(r.status, 403);
  const body = await r.json() as { errors: { code: string }[] };
  assert.equal(body.errors[0].code, 'DENIED');
  const ok = await fetch(`${basicReg.url}/v2/x/y/blobs/uploads/`, { method: 'POST', headers: { authorization: basicAuth('alice', 'alice-pw') } });
  assert.equal(ok.status, 202);
  await ok.arrayBuffer();
});

test('pier login, push and pull through the basic-auth registry', async () => {
  const l = await pier(root, ['login', basicReg.host, '-u', 'alice', '--password-stdin'], 'alice-pw\n');
  assert.equal(l.status, 0, l.stderr);
  const push = await pier(root, ['push', 'busybox:latest', `${basicReg.host}/team/bb:1`]);
  assert.equal(push.status, 0, push.stderr);
  const other = join(tmp, 'bob-basic');
  assert.equal((await pier(other, ['login', basicReg.host, '-u', 'bob', '-p', 'bob-pw'])).status, 0);
  const pull = await pier(other, ['pull', `${basicReg.host}/team/bb:1`]);
  assert.equal(pull.status, 0, pull.stderr);
  const denied = await pier(other, ['push', `${basicReg.host}/team/bb:1`, `${basicReg.host}/team/bb:2`]);
  assert.equal(denied.status, 1);
  assert.match(denied.stderr, /DENIED/);
  // logout forgets bob's credentials: the same pull is now anonymous and refused
  const out = await pier(other, ['logout', `http://${basicReg.host}/`]);
  assert.equal(out.status, 0, out.stderr);
  assert.equal(out.stdout, `Removing login credentials for ${basicReg.host}\n`);
  assert.equal(JSON.parse(readFileSync(join(other, 'auth.json'), 'utf8')).auths[basicReg.host], undefined);
  const anon = await pier(other, ['pull', `${basicReg.host}/team/bb:1`]);
  assert.equal(anon.status, 1);
  assert.match(anon.stderr, /UNAUTHORIZED|401/);
  const again = await pier(other, ['logout', basicReg.host]);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout, `Not logged in to ${basicReg.host}\n`);
  const bad = await pier(other, ['logout', 'no host!']);
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, 'pier: logout: "no host!" is not a registry host\n');
});

test('a credential helper named in auth.json keeps the credentials: login stores, pull gets, logout erases', async () => {
  // A helper speaking docker-credential-helpers' protocol, keeping each host's JSON in a file.
  const bin = join(tmp, 'helper-bin');
  const store = join(tmp, 'helper-store');
  mkdirSync(bin);
  mkdirSync(store);
  writeFileSync(join(bin, 'docker-credential-piertest'), `#!/bin/sh
read_host() { read -r host; printf '%s' "$host" | tr ':/' '__'; }
case "$1" in
  store) json=$(cat); host=$(printf '%s' "$json" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p' | tr ':/' '__'); printf '%s' "$json" > "${store}/$host" ;;
  get) f="${store}/$(read_host)"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) rm "${store}/$(read_host)" ;;
  *) echo "unknown verb $1" >&2; exit 2 ;;
esac
`, { mode: 0o755 });
  const user = join(tmp, 'helper-user');
  mkdirSync(user);
  writeFileSync(join(user, 'auth.json'), JSON.stringify({ credHelpers: { [basicReg.host]: 'piertest' } }));
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  try {
    const l = await pier(user, ['login', basicReg.host, '-u', 'bob', '-p', 'bob-pw']);
    assert.equal(l.status, 0, l.stderr);
    const kept = JSON.parse(readFileSync(join(store, basicReg.host.replace(':', '_')), 'utf8'));
    assert.deepEqual(kept, { ServerURL: basicReg.host, Username: 'bob', Secret: 'bob-pw' });
    assert.deepEqual(JSON.parse(readFileSync(join(user, 'auth.json'), 'utf8')), { credHelpers: { [basicReg.host]: 'piertest' } }, 'no password in auth.json');
    const pull = await pier(user, ['pull', `${basicReg.host}/team/bb:1`]);
    assert.equal(pull.status, 0, pull.stderr);
    const out = await pier(user, ['logout', basicReg.host]);
    assert.equal(out.stdout, `Removing login credentials for ${basicReg.host}\n`);
    assert.deepEqual(readdirSync(store), []);
    assert.equal((await pier(user, ['logout', basicReg.host])).stdout, `Not logged in to ${basicReg.host}\n`);
    // credsStore names one helper for every host; a missing helper is one line
    writeFileSync(join(user, 'auth.json'), JSON.stringify({ credsStore: 'nosuchhelper' }));
    const missing = await pier(user, ['pull', `${basicReg.host}/team/bb:1`]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^pier: pull .*: credential helper docker-credential-nosuchhelper is not on PATH \(auth\.json names it\)\n$/);
  } finally {
    process.env.PATH = path;
  }
});

test('token issuer: anonymous /v2/ gets a Bearer challenge naming the realm and service', async () => {
  const r = await fetch(`${tokenReg.url}/v2/`);
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('www-authenticate'), `Bearer realm="${tokenReg.url}/token",service="pier-test"`);
  const m = await fetch(`${tokenReg.url}/v2/library/bb/manifests/1`, { method: 'HEAD' });
  assert.equal(m.status, 401);
  assert.match(m.headers.get('www-authenticate') ?? '', /,scope="repository:library\/bb:pull"$/);
});

test('token issuer: tokens are ES256 JWTs with the granted access only', async () => {
  const r = await fetch(`${tokenReg.url}/token?service=pier-test&scope=repository:library/bb:pull,push&scope=repository:other/x:pull`, { headers: { authorization: basicAuth('bob', 'bob-pw') } });
  assert.equal(r.status, 200);
  const body = await r.json() as { token: string; expires_in: number };
  assert.ok(body.expires_in >= 60);
  const [h, c] = body.token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>);
  assert.equal(h.alg, 'ES256');
  assert.equal(c.sub, 'bob');
  assert.equal(c.aud, 'pier-test');
  for (const k of ['iss', 'exp', 'nbf', 'iat', 'jti']) assert.ok(c[k] !== undefined, k);
  assert.deepEqual(c.access, [{ type: 'repository', name: 'library/bb', actions: ['pull'] }]);
  const wrong = await fetch(`${tokenReg.url}/token?service=pier-test&scope=repository:library/bb:pull`, { headers: { authorization: basicAuth('bob', 'nope') } });
  assert.equal(wrong.status, 401);
  await wrong.arrayBuffer();
});

test('token issuer: pier login, push and pull; a pull-only user cannot push', async () => {
  const l = await pier(root, ['login', tokenReg.host, '-u', 'alice', '-p', 'alice-pw']);
  assert.equal(l.status, 0, l.stderr);
  const push = await pier(root, ['push', 'busybox:latest', `${tokenReg.host}/library/bb:1`]);
  assert.equal(push.status, 0, push.stderr);
  assert.match(push.stdout, /digest: sha256:/);
  const bobRoot = join(tmp, 'bob-token');
  assert.equal((await pier(bobRoot, ['login', tokenReg.host, '-u', 'bob', '-p', 'bob-pw'])).status, 0);
  const pull = await pier(bobRoot, ['pull', `${tokenReg.host}/library/bb:1`]);
  assert.equal(pull.status, 0, pull.stderr);
  const denied = await pier(bobRoot, ['push', `${tokenReg.host}/library/bb:1`, `${tokenReg.host}/library/bb:2`]);
  assert.equal(denied.status, 1);
  assert.match(denied.stderr, /UNAUTHORIZED|DENIED/);
  // the raw answer: 401 with error="insufficient_scope" and the scope the request needs
  const t = await fetch(`${tokenReg.url}/token?service=pier-test&scope=repository:library/bb:pull,push`, { headers: { authorization: basicAuth('bob', 'bob-pw') } });
  const { token } = await t.json() as { token: string };
  const r = await fetch(`${tokenReg.url}/v2/library/bb/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate') ?? '', /scope="repository:library\/bb:push",error="insufficient_scope"/);
  assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0].code, 'UNAUTHORIZED');
  const get = await fetch(`${tokenReg.url}/v2/library/bb/manifests/1`, { headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(get.status, 200);
  await get.arrayBuffer();
});

test('catalog and pier registry ls list what the caller may pull', async () => {
  // token registry: alice may pull library/**, anonymous only public/*
  const alice = root; // has busybox
  assert.equal((await pier(alice, ['login', tokenReg.host, '-u', 'alice', '-p', 'alice-pw'])).status, 0);
  const pub = await pier(alice, ['push', 'busybox:latest', `${tokenReg.host}/library/seen:1`]);
  assert.equal(pub.status, 0, pub.stderr);
  await pier(alice, ['push', 'busybox:latest', `${tokenReg.host}/library/seen:2`]);
  const mine = await pier(alice, ['registry', 'ls', tokenReg.host]);
  assert.equal(mine.status, 0, mine.stderr);
  assert.ok(mine.stdout.split('\n').includes('library/seen'), mine.stdout);
  assert.ok(mine.stdout.split('\n').filter(Boolean).every((r) => r.startsWith('library/')), mine.stdout);
  assert.equal((await pier(alice, ['registry', 'ls', `${tokenReg.host}/library/seen`])).stdout, '1\n2\n');
  const anon = await pier(join(tmp, 'anon-token'), ['registry', 'ls', tokenReg.host]);
  assert.equal(anon.status, 0, anon.stderr);
  assert.ok(anon.stdout.split('\n').filter(Boolean).every((r) => r.startsWith('public/')), anon.stdout);
  // basic registry without anonymous access: the catalog needs credentials too
  const r = await fetch(`${basicReg.url}/v2/_catalog`);
  assert.equal(r.status, 401);
  await r.arrayBuffer();
  const bad = await pier(join(tmp, 'anon-basic'), ['registry', 'ls', basicReg.host]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^pier: registry ls: UNAUTHORIZED: \S+ wants a login \(pier login \S+\)\n$/);
});

test('token issuer: expired, foreign-signed and wrong-audience tokens are refused', async () => {
  const key = tokenReg.gate!.tokenKey!;
  const claims = { iss: tokenReg.gate!.issuer, sub: 'alice', aud: 'pier-test', access: [{ type: 'repository' as const, name: 'library/bb', actions: ['pull'] }] };
  const url = `${tokenReg.url}/v2/library/bb/tags/list`;
  const good = key.sign(claims, 60).token;
  const ok = await fetch(url, { headers: { authorization: `Bearer ${good}` } });
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
  const cases: [string, string][] = [
    ['expired', key.sign(claims, 60, Date.now() - 3_600_000).token],
    ['foreign', TokenKey.generate().sign(claims, 60).token],
    ['audience', key.sign({ ...claims, aud: 'elsewhere' }, 60).token],
    ['tampered', good.slice(0, good.lastIndexOf('.') - 4) + 'AAAA' + good.slice(good.lastIndexOf('.'))],
  ];
  for (const [what, token] of cases) {
    const r = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 401, what);
    assert.match(r.headers.get('www-authenticate') ?? '', /error="invalid_token"/, what);
    await r.arrayBuffer();
  }
});

test('token issuer: anonymous gets a token for public repositories only', async () => {
  const t = await fetch(`${tokenReg.url}/token?service=pier-test&scope=repository:public/x:pull&scope=repository:library/bb:pull`);
  assert.equal(t.status, 200);
  const { token } = await t.json() as { token: string };
  const c = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { access: unknown; sub: string };
  assert.equal(c.sub, '');
  assert.deepEqual(c.access, [{ type: 'repository', name: 'public/x', actions: ['pull'] }]);
  const r = await fetch(`${tokenReg.url}/v2/public/x/tags/list`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 404); // allowed in, and the repository does not exist
  await r.arrayBuffer();
});

test('/metrics counters move after requests; the access log has a line per request', async () => {
  const scrape = async () => (await (await fetch(`${basicReg.url}/metrics`)).text());
  const count = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  const before = await scrape();
  assert.match(before, /# TYPE pier_registry_requests_total counter/);
  assert.match(before, /pier_registry_uploads_in_progress \d+/);
  assert.match(before, /pier_registry_request_duration_seconds_bucket\{method="GET",le="\+Inf"\} \d+/);
  const unauthorized = /pier_registry_requests_total\{method="GET",status="401"\} (\d+)/;
  const n401 = count(before, unauthorized);
  const inBytes = count(before, /pier_registry_received_bytes_total (\d+)/);
  for (let i = 0; i < 3; i++) await (await fetch(`${basicReg.url}/v2/`)).arrayBuffer();
  const after = await scrape();
  assert.equal(count(after, unauthorized), n401 + 3);
  assert.ok(count(after, /pier_registry_received_bytes_total (\d+)/) > inBytes);
  assert.ok(count(after, /pier_registry_manifests_stored_total (\d+)/) >= 1, 'the pier push stored a manifest');
  assert.ok(count(after, /pier_registry_blobs_stored_total (\d+)/) >= 1);
  const lines = basicLog.filter((l) => l.includes('"GET /v2/" 401'));
  assert.ok(lines.length >= 3, basicLog.slice(-5).join(''));
  assert.match(lines[0], /^\d{4}-\d\d-\d\dT\S+ 127\.0\.0\.1 - "GET \/v2\/" 401 \d+ \d+\.\dms\n$/);
  assert.ok(basicLog.some((l) => / alice "PUT \/v2\/team\/bb\/manifests\/1" 201 /.test(l)));
});
