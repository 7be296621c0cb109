/**
 * `pier registry serve` with auth and TLS against Debian's clients: skopeo copy with
 * --dest-creds and podman login/push to an htpasswd registry (access log file, --metrics-listen);
 * skopeo over HTTPS with --cert-dir (certificate verified) and through the built-in token issuer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, tempDir } from '../helpers/image.ts';

const TOP = join(import.meta.dirname, '..', '..');
let work = '';
const servers: ChildProcess[] = [];
let basic = { url: '', host: '', metrics: '' };
let tls = { url: '', host: '' };

function sh(cmd: string, args: string[], opts: { env?: Record<string, string>; input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...opts.env }, input: opts.input, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function fails(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000 });
  assert.notEqual(r.status, 0, `${cmd} ${args.join(' ')} should have failed`);
  return r.stderr;
}

async function serve(args: string[]): Promise<{ url: string; host: string; metrics: string }> {
  const p = spawn(process.execPath, [join(TOP, 'src/cli/pier.ts'), 'registry', 'serve', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(p);
  let err = '';
  p.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      const m = /listening on (https?:\/\/(\S+?)) \(.*\)\n/.exec(buf);
      if (m) resolve({ url: m[1], host: m[2], metrics: /metrics on (\S+?)\/metrics/.exec(m[0])?.[1] ?? '' });
    });
    p.once('exit', (code) => reject(new Error(`pier registry serve exited ${code}: ${err}`)));
  });
}

before(async () => {
  work = tempDir('pier-registry-auth-interop-');
  const env = { PIER_ROOT: join(work, 'root') };
  sh(process.execPath, [join(TOP, 'src/cli/pier.ts'), 'image', 'bootstrap', 'busybox'], { env });
  sh(process.execPath, [join(TOP, 'src/cli/pier.ts'), 'image', 'export', '--output', join(work, 'layout'), 'busybox'], { env });
  writeFileSync(join(work, 'htpasswd'), sh('htpasswd', ['-Bbn', 'alice', 'alice-pw']));
  sh('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(work, 'tls.key'), '-out', join(work, 'tls.crt')]);
  mkdirSync(join(work, 'certs'));
  copyFileSync(join(work, 'tls.crt'), join(work, 'certs', 'ca.crt'));
  basic = await serve(['--storage', join(work, 'basic'), '--htpasswd', join(work, 'htpasswd'),
    '--access-log', join(work, 'access.log'), '--metrics-listen', '127.0.0.1:0']);
  const t = await serve(['--storage', join(work, 'tls'), '--htpasswd', join(work, 'htpasswd'), '--token-issuer',
    '--tls-cert', join(work, 'tls.crt'), '--tls-key', join(work, 'tls.key'), '--access-log', 'none']);
  tls = { url: t.url, host: t.host };
});

after(async () => {
  for (const s of servers) {
    if (s.exitCode !== null) continue;
    const done = new Promise((r) => s.once('exit', r));
    s.kill('SIGTERM');
    await done;
  }
  if (work) cleanup(work);
});

test('skopeo copy --dest-creds to an htpasswd registry; without creds it is refused', () => {
  const src = `oci:${join(work, 'layout')}:latest`;
  const stderr = fails('skopeo', ['copy', '--dest-tls-verify=false', src, `docker://${basic.host}/library/busybox:1`]);
  assert.match(stderr, /unauthorized|authentication required/i);
  sh('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', 'alice:alice-pw', src, `docker://${basic.host}/library/busybox:1`]);
  const tags = JSON.parse(sh('skopeo', ['list-tags', '--tls-verify=false', '--creds', 'alice:alice-pw', `docker://${basic.host}/library/busybox`]));
  assert.deepEqual(tags.Tags, ['1']);
  fails('skopeo', ['inspect', '--tls-verify=false', '--creds', 'alice:wrong', `docker://${basic.host}/library/busybox:1`]);
});

test('podman login and push to an htpasswd registry', () => {
  const authfile = join(work, 'podman-auth.json');
  const podman = (args: string[], input?: string) => sh('podman', ['--root', join(work, 'podman-root'), '--runroot', join(work, 'podman-run'), '--storage-driver', 'vfs', ...args], { input });
  podman(['login', '--tls-verify=false', '--authfile', authfile, '-u', 'alice', '--password-stdin', basic.host], 'alice-pw\n');
  podman(['pull', '--tls-verify=false', '--authfile', authfile, `${basic.host}/library/busybox:1`]);
  podman(['tag', `${basic.host}/library/busybox:1`, `${basic.host}/podman/bb:v2`]);
  podman(['push', '--tls-verify=false', '--authfile', authfile, `${basic.host}/podman/bb:v2`]);
  const tags = JSON.parse(sh('skopeo', ['list-tags', '--tls-verify=false', '--creds', 'alice:alice-pw', `docker://${basic.host}/podman/bb`]));
  assert.deepEqual(tags.Tags, ['v2']);
  podman(['rmi', '-a', '-f']);
});

test('access log file has a line per request, with the user; --metrics-listen serves /metrics', async () => {
  const log = readFileSync(join(work, 'access.log'), 'utf8').split('\n').filter((l) => l !== '');
  assert.ok(log.length > 5);
  assert.ok(log.some((l) => / 127\.0\.0\.1 - "GET \/v2\/" 401 \d+ [\d.]+ms$/.test(l)));
  assert.ok(log.some((l) => / 127\.0\.0\.1 alice "PUT \/v2\/library\/busybox\/manifests\/1" 201 /.test(l)));
  const m = await (await fetch(`${basic.metrics}/metrics`)).text();
  assert.match(m, /pier_registry_requests_total\{method="PUT",status="201"\} [1-9]/);
  assert.match(m, /pier_registry_manifests_stored_total [1-9]/);
  assert.equal((await fetch(`${basic.metrics}/v2/`)).status, 404);
});

test('TLS + token issuer: skopeo copy with --dest-creds, inspect with --cert-dir verifying the certificate', () => {
  assert.match(tls.url, /^https:\/\//);
  const src = `oci:${join(work, 'layout')}:latest`;
  sh('skopeo', ['copy', '--dest-cert-dir', join(work, 'certs'), '--dest-creds', 'alice:alice-pw', src, `docker://${tls.host}/library/busybox:tls`]);
  const raw = sh('skopeo', ['inspect', '--cert-dir', join(work, 'certs'), '--creds', 'alice:alice-pw', '--raw', `docker://${tls.host}/library/busybox:tls`]);
  assert.equal(JSON.parse(raw).schemaVersion, 2);
  sh('skopeo', ['inspect', '--tls-verify=false', '--creds', 'alice:alice-pw', `docker://${tls.host}/library/busybox:tls`]);
  // without the CA the certificate is not trusted
  const stderr = fails('skopeo', ['inspect', '--creds', 'alice:alice-pw', `docker://${tls.host}/library/busybox:tls`]);
  assert.match(stderr, /certificate/i);
  fails('skopeo', ['inspect', '--tls-verify=false', '--creds', 'alice:wrong', `docker://${tls.host}/library/busybox:tls`]);
});
