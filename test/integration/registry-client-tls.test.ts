/**
 * pier's client over HTTPS: trust from certs.d or --cert-dir (a loopback registry with TLS material
 * is reached over HTTPS), a token issuer behind the same certificate, client certificates, and one
 * line for each way the TLS setup can be wrong.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pierAsync as pier } from '../helpers/pier.ts';
import { startRegistry, type RunningRegistry } from '../../src/registry/server/index.ts';
import { ImageService } from '../../src/image/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'pier-regtls-'));
const root = join(tmp, 'root');
const certs = join(tmp, 'certs');
let reg: RunningRegistry;
let mtls: Server;
let mtlsHost = '';

function selfSigned(name: string, cn: string): void {
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(tmp, `${name}.key`), '-out', join(tmp, `${name}.crt`)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
}

before(async () => {
  selfSigned('server', '127.0.0.1');
  selfSigned('other', '127.0.0.1');
  selfSigned('client', 'pier-client');
  mkdirSync(certs);
  copyFileSync(join(tmp, 'server.crt'), join(certs, 'ca.crt'));
  const pw = spawnSync('htpasswd', ['-Bbn', 'alice', 'alice-pw'], { encoding: 'utf8' }).stdout;
  writeFileSync(join(tmp, 'htpasswd'), pw);
  reg = await startRegistry({
    listen: '127.0.0.1:0', storage: join(tmp, 'storage'),
    tls: { cert: join(tmp, 'server.crt'), key: join(tmp, 'server.key') },
    auth: { htpasswd: join(tmp, 'htpasswd'), tokenIssuer: true, service: 'pier-tls' },
  });
  // A server that wants a client certificate signed by the client CA: /v2/ answers, manifests do not exist.
  mtls = createServer({
    cert: readFileSync(join(tmp, 'server.crt')), key: readFileSync(join(tmp, 'server.key')),
    ca: readFileSync(join(tmp, 'client.crt')), requestCert: true, rejectUnauthorized: true,
  }, (req, res) => {
    const body = req.url === '/v2/' ? '{}' : JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
    res.writeHead(req.url === '/v2/' ? 200 : 404, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' });
    res.end(body);
  });
  await new Promise<void>((r) => mtls.listen(0, '127.0.0.1', r));
  mtlsHost = `127.0.0.1:${(mtls.address() as AddressInfo).port}`;
  await new ImageService({ root }).bootstrap('busybox');
});

after(async () => {
  await reg?.close();
  await new Promise((r) => mtls?.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

test('--cert-dir: login, push and pull over HTTPS to a loopback registry, through its token issuer', async () => {
  assert.match(reg.url, /^https:\/\//);
  const login = await pier(root, ['login', '--cert-dir', certs, reg.host, '-u', 'alice', '--password-stdin'], 'alice-pw\n');
  assert.equal(login.status, 0, login.stderr);
  const push = await pier(root, ['push', '--cert-dir', certs, 'busybox:latest', `${reg.host}/tls/bb:1`]);
  assert.equal(push.status, 0, push.stderr);
  const pull = await pier(join(tmp, 'pulled'), ['pull', '--cert-dir', certs, `${reg.host}/tls/bb:1`]);
  assert.equal(pull.status, 1, 'anonymous: no grant');
  assert.match(pull.stderr, /UNAUTHORIZED|DENIED/);
});

test('certs.d under the state root: no flag needed', async () => {
  const other = join(tmp, 'certs-d');
  mkdirSync(join(other, 'certs.d', reg.host), { recursive: true });
  copyFileSync(join(tmp, 'server.crt'), join(other, 'certs.d', reg.host, 'ca.crt'));
  const login = await pier(other, ['login', reg.host, '-u', 'alice', '-p', 'alice-pw']);
  assert.equal(login.status, 0, login.stderr);
  const pull = await pier(other, ['pull', `${reg.host}/tls/bb:1`]);
  assert.equal(pull.status, 0, pull.stderr);
  assert.ok((await new ImageService({ root: other }).resolve(`${reg.host}/tls/bb:1`)).manifest.layers.length > 0);
});

test('a client certificate from the cert dir is presented; without it the handshake fails', async () => {
  const withCert = join(tmp, 'client-certs');
  mkdirSync(withCert);
  copyFileSync(join(tmp, 'server.crt'), join(withCert, 'ca.crt'));
  copyFileSync(join(tmp, 'client.crt'), join(withCert, 'client.cert'));
  copyFileSync(join(tmp, 'client.key'), join(withCert, 'client.key'));
  const ok = await pier(join(tmp, 'm1'), ['pull', '--cert-dir', withCert, `${mtlsHost}/x/y:1`]);
  assert.equal(ok.status, 1);
  assert.match(ok.stderr, /MANIFEST_UNKNOWN/, 'the request reached the server');
  const without = await pier(join(tmp, 'm2'), ['pull', '--cert-dir', certs, `${mtlsHost}/x/y:1`]);
  assert.equal(without.status, 1);
  assert.doesNotMatch(without.stderr, /MANIFEST_UNKNOWN/);
  assert.equal(without.stderr.trim().split('\n').length, 1, without.stderr);
});

test('TLS set up wrong: one line each, naming what to fix', async () => {
  const dirs = (name: string, files: Record<string, string>) => {
    const d = join(tmp, name);
    mkdirSync(d);
    for (const [f, from] of Object.entries(files)) writeFileSync(join(d, f), from.startsWith('/') ? readFileSync(from) : from);
    return d;
  };
  const untrusted = dirs('untrusted', { 'ca.crt': join(tmp, 'other.crt') });
  const cases: [string[], RegExp][] = [
    [['--cert-dir', untrusted], /the server's TLS certificate is not trusted \(.+\): the CAs in .*untrusted do not vouch for it$/],
    [['--cert-dir', join(tmp, 'nope')], /certificate directory .*nope does not exist$/],
    [['--cert-dir', dirs('junk', { 'ca.crt': 'hello\n' })], /junk\/ca\.crt is not a PEM certificate$/],
    [['--cert-dir', dirs('lonely', { 'ca.crt': join(tmp, 'server.crt'), 'me.cert': join(tmp, 'client.crt') })], /client certificate .*lonely\/me\.cert has no key .*lonely\/me\.key$/],
    [['--cert-dir', dirs('keyonly', { 'me.key': join(tmp, 'client.key') })], /key .*keyonly\/me\.key has no client certificate me\.cert beside it$/],
  ];
  for (const [flags, re] of cases) {
    const r = await pier(join(tmp, 'bad'), ['pull', ...flags, `${reg.host}/tls/bb:1`]);
    assert.equal(r.status, 1, flags.join(' '));
    assert.match(r.stderr.trim(), re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  // HTTPS to a plain-HTTP server
  const plain = await startRegistry({ listen: '127.0.0.1:0', storage: join(tmp, 'plain') });
  try {
    const r = await pier(join(tmp, 'bad'), ['pull', '--cert-dir', certs, `${plain.host}/tls/bb:1`]);
    assert.equal(r.status, 1);
    assert.match(r.stderr.trim(), /the server does not speak TLS \(use --insecure for plain HTTP\)$/);
  } finally {
    await plain.close();
  }
});
