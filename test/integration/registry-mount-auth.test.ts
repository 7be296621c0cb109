/**
 * Cross-repository mounts under auth, written as the attack of issue 10 finding 3: alice, who may
 * push only to alice/*, asks the registry to mount bob's private blob into her repository — without
 * `from`, and with `from=bob/…` which she may not pull — over htpasswd Basic and over Bearer tokens.
 * Each must get a plain upload session (202), never the blob and never a hint: the answer for a
 * digest that exists is the same as for one that does not. Mounts the caller may do still mount.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../../src/registry/server/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pier-regmount-'));
let basicReg: RunningRegistry;
let tokenReg: RunningRegistry;
let openReg: RunningRegistry;

const sha = (b: string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');
const PASSWORDS: Record<string, string> = { alice: 'alice-pw', bob: 'bob-pw' };

function htpasswd(user: string, pw: string): string {
  const r = spawnSync('htpasswd', ['-Bbn', user, pw], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  writeFileSync(join(tmp, 'htpasswd'), htpasswd('alice', PASSWORDS.alice) + htpasswd('bob', PASSWORDS.bob));
  // alice: her own namespace, and pull on shared/*; bob: his own namespace, and push on shared/*
  writeFileSync(join(tmp, 'access.json'), JSON.stringify({
    alice: { 'alice/*': ['pull', 'push'], 'shared/*': ['pull'] },
    bob: { 'bob/*': ['pull', 'push'], 'shared/*': ['pull', 'push'] },
  }));
  const auth = { htpasswd: join(tmp, 'htpasswd'), access: join(tmp, 'access.json') };
  basicReg = await startRegistry({ listen: '127.0.0.1:0', storage: join(tmp, 'basic'), auth });
  tokenReg = await startRegistry({ listen: '127.0.0.1:0', storage: join(tmp, 'token'), auth: { ...auth, tokenIssuer: true } });
  openReg = await startRegistry({ listen: '127.0.0.1:0', storage: join(tmp, 'open') });
});

after(async () => {
  await basicReg?.close();
  await tokenReg?.close();
  await openReg?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** How a user authenticates one request: Basic, or a token asked for `scopes` (granted minus what the policy refuses). */
type Login = (user: string, scopes: string[]) => Promise<Record<string, string>>;

const basicLogin: Login = async (user) => ({ authorization: basic(user, PASSWORDS[user]) });

const tokenLogin: Login = async (user, scopes) => {
  const u = new URL(`${tokenReg.url}/token`);
  u.searchParams.set('service', 'pier-registry');
  for (const s of scopes) u.searchParams.append('scope', s);
  const r = await fetch(u, { headers: { authorization: basic(user, PASSWORDS[user]) } });
  assert.equal(r.status, 200, `token for ${user}`);
  return { authorization: `Bearer ${((await r.json()) as { token: string }).token}` };
};

async function call(reg: RunningRegistry, method: string, path: string, headers: Record<string, string>, body?: string) {
  const r = await fetch(reg.url + path, { method, headers, body, redirect: 'manual' });
  const text = method === 'HEAD' ? '' : await r.text();
  return { status: r.status, headers: r.headers, text };
}

/** Push `data` into `repo` as `user` in one POST; its digest. */
async function push(reg: RunningRegistry, login: Login, user: string, repo: string, data: string): Promise<string> {
  const d = sha(data);
  const r = await call(reg, 'POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, { ...(await login(user, [`repository:${repo}:pull,push`])), 'content-type': 'application/octet-stream' }, data);
  assert.equal(r.status, 201, r.text);
  return d;
}

/** What a mount answer reveals: its status, which headers it has, and its body (the session id aside). */
function shape(r: { status: number; headers: Headers; text: string }) {
  const names = [...r.headers.keys()].filter((k) => k !== 'date').sort();
  const location = (r.headers.get('location') ?? '').replace(/[0-9a-f-]{36}$/, '<uuid>');
  return { status: r.status, names, location, range: r.headers.get('range'), body: r.text };
}

for (const [mode, login, regOf] of [['htpasswd', basicLogin, () => basicReg], ['token', tokenLogin, () => tokenReg]] as const) {
  const secret = `bob's private layer (${mode})`;
  let d = '';
  /** alice's credentials: she asks for everything she might want; the issuer grants her only `repo` */
  const alice = (repo: string) => login('alice', [`repository:${repo}:pull,push`, 'repository:bob/private:pull']);
  /** alice asks for a mount into a repository of her own (one per attack, so none sees another's result) */
  const attack = async (repo: string, query: string) => {
    if (!d) d = await push(regOf(), login, 'bob', 'bob/private', secret);
    const creds = await alice(repo);
    const r = await call(regOf(), 'POST', `/v2/${repo}/blobs/uploads/?${query.replace('D', d)}`, creds);
    assert.equal(r.status, 202, `${query}: a plain upload session, not a mount or an error: ${r.text}`);
    assert.ok((r.headers.get('location') ?? '').startsWith(`/v2/${repo}/blobs/uploads/`), `${query}: a session's location`);
    assert.equal(r.headers.get('docker-content-digest'), null);
    const get = await call(regOf(), 'GET', `/v2/${repo}/blobs/${d}`, creds);
    assert.equal(get.status, 404, `${query}: the blob did not become alice's`);
    assert.equal(JSON.parse(get.text).errors[0].code, 'BLOB_UNKNOWN');
    assert.ok(!get.text.includes(secret));
  };

  test(`${mode}: alice mounting bob's private blob without from gets a session, not the blob`, () => attack('alice/nofrom', 'mount=D'));

  test(`${mode}: alice mounting it from bob's repository, which she may not pull, gets a session (no 401/403)`, () => attack('alice/frombob', 'mount=D&from=bob/private'));

  test(`${mode}: the mount answer is no oracle: a digest bob has and one nobody has answer alike`, async () => {
    if (!d) d = await push(regOf(), login, 'bob', 'bob/private', secret);
    const absent = sha(`never pushed anywhere (${mode})`);
    const creds = await alice('alice/oracle');
    for (const from of ['', '&from=bob/private', '&from=bob/nonexistent']) {
      const have = shape(await call(regOf(), 'POST', `/v2/alice/oracle/blobs/uploads/?mount=${d}${from}`, creds));
      const none = shape(await call(regOf(), 'POST', `/v2/alice/oracle/blobs/uploads/?mount=${absent}${from}`, creds));
      assert.deepEqual(have, none, `mount${from || ' without from'}: same answer for an existing and an absent digest`);
      assert.equal(have.status, 202);
    }
    // bob's own copy is intact
    const bob = await login('bob', ['repository:bob/private:pull']);
    assert.equal((await call(regOf(), 'GET', `/v2/bob/private/blobs/${d}`, bob)).text, secret);
  });

  test(`${mode}: a mount the caller may do still mounts (201), and only with from`, async () => {
    const reg = regOf();
    const data = `a shared layer (${mode})`;
    const d = await push(reg, login, 'bob', 'shared/base', data);
    const bob = await login('bob', ['repository:bob/app:pull,push', 'repository:shared/base:pull']);
    const own = await call(reg, 'POST', `/v2/bob/app/blobs/uploads/?mount=${d}&from=shared/base`, bob);
    assert.equal(own.status, 201, own.text);
    assert.equal(own.headers.get('location'), `/v2/bob/app/blobs/${d}`);
    // alice may pull shared/base: mounting from it into her repository works
    const alice = await login('alice', ['repository:alice/lib:pull,push', 'repository:shared/base:pull']);
    const m = await call(reg, 'POST', `/v2/alice/lib/blobs/uploads/?mount=${d}&from=shared/base`, alice);
    assert.equal(m.status, 201, m.text);
    assert.equal(m.headers.get('docker-content-digest'), d);
    assert.equal((await call(reg, 'GET', `/v2/alice/lib/blobs/${d}`, alice)).text, data);
    // without from, not even a blob she could pull is mounted: no automatic content discovery
    const alice2 = await login('alice', ['repository:alice/lib2:pull,push']);
    const auto = await call(reg, 'POST', `/v2/alice/lib2/blobs/uploads/?mount=${d}`, alice2);
    assert.equal(auto.status, 202, auto.text);
    assert.equal((await call(reg, 'GET', `/v2/alice/lib2/blobs/${d}`, alice2)).status, 404);
  });
}

test('token: a token that does not carry pull on from gets a session, even when the policy would grant it', async () => {
  const d = await push(tokenReg, tokenLogin, 'bob', 'shared/narrow', 'narrow token layer');
  // alice may pull shared/narrow, but this token was asked for (and grants) alice/ci only
  const narrow = await tokenLogin('alice', ['repository:alice/ci:pull,push']);
  const r = await call(tokenReg, 'POST', `/v2/alice/ci/blobs/uploads/?mount=${d}&from=shared/narrow`, narrow);
  assert.equal(r.status, 202, r.text);
  assert.equal((await call(tokenReg, 'GET', `/v2/alice/ci/blobs/${d}`, narrow)).status, 404);
  // a request without a token is told to come back with pull on from as well, so it can mount
  const anon = await call(tokenReg, 'POST', `/v2/alice/ci/blobs/uploads/?mount=${d}&from=shared/narrow`, {});
  assert.equal(anon.status, 401);
  assert.match(anon.headers.get('www-authenticate') ?? '', /scope="repository:alice\/ci:push repository:shared\/narrow:pull"/);
  // `from` comes decoded from the query: one that is no repository name stays out of the header
  const forged = await call(tokenReg, 'POST', `/v2/alice/ci/blobs/uploads/?mount=${d}&from=${encodeURIComponent('x",realm="http://evil.example/token')}`, {});
  assert.equal(forged.status, 401);
  assert.doesNotMatch(forged.headers.get('www-authenticate') ?? '', /evil/);
  assert.match(forged.headers.get('www-authenticate') ?? '', /scope="repository:alice\/ci:push"$/);
});

test('without auth: mount with from links, without from opens a session', async () => {
  const d = await push(openReg, async () => ({}), 'nobody', 'src/repo', 'open layer');
  const m = await call(openReg, 'POST', `/v2/dst/repo/blobs/uploads/?mount=${d}&from=src/repo`, {});
  assert.equal(m.status, 201, m.text);
  const auto = await call(openReg, 'POST', `/v2/dst/other/blobs/uploads/?mount=${d}`, {});
  assert.equal(auto.status, 202, auto.text);
  assert.equal((await call(openReg, 'GET', `/v2/dst/other/blobs/${d}`, {})).status, 404);
});
