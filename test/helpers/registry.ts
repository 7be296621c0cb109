/**
 * Debian's docker-registry (distribution 2.8.2) on an ephemeral loopback port, and a counting
 * proxy in front of it that can fail chosen requests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Registry {
  host: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Start a registry storing under `dir`; `htpasswd` (user, pass) turns on basic auth. */
export async function startRegistry(dir: string, opts: { htpasswd?: [string, string] } = {}): Promise<Registry> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let auth = '';
  if (opts.htpasswd) {
    const r = spawnSync('htpasswd', ['-Bbn', ...opts.htpasswd], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
    writeFileSync(join(dir, 'htpasswd'), r.stdout);
    auth = `auth:\n  htpasswd:\n    realm: pier-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  const config = `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: pier-test-secret\n${auth}`;
  writeFileSync(join(dir, 'config.yml'), config);
  const proc = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (c: Buffer) => { log += c.toString(); });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request(`http://${host}/v2/`, (res) => { res.resume(); resolve(true); });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (ok) break;
    if (i > 100 || proc.exitCode !== null) throw new Error(`docker-registry did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host, proc,
    stop: () => new Promise<void>((r) => { if (proc.exitCode !== null) return r(); proc.once('exit', () => r()); proc.kill('SIGTERM'); }),
  };
}

export interface Proxy {
  host: string;
  /** every request seen: `METHOD path` (query dropped), with the query string in `queries` */
  seen: { method: string; path: string; query: string }[];
  /** return true to answer this request with 500 instead of forwarding it */
  fail?: (req: IncomingMessage) => boolean;
  stop(): Promise<void>;
}

export async function startProxy(target: string): Promise<Proxy> {
  const proxy: Proxy = { host: '', seen: [], stop: async () => {} };
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    proxy.seen.push({ method: req.method ?? '', path: u.pathname, query: u.search });
    if (proxy.fail?.(req)) {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'injected failure' }] }));
      return;
    }
    const up = request(`http://${target}${req.url}`, { method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.stop = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return proxy;
}

export interface TokenProxy {
  host: string;
  /** query strings the token endpoint was asked with */
  tokenRequests: URLSearchParams[];
  stop(): Promise<void>;
}

/**
 * Docker token auth in front of a registry: `/v2/…` without `Authorization: Bearer good-token`
 * gets 401 and a Bearer challenge; `/token` hands out that token for basic `user:pass` only.
 */
export async function startTokenProxy(target: string, user: string, pass: string): Promise<TokenProxy> {
  const tp: TokenProxy = { host: '', tokenRequests: [], stop: async () => {} };
  const basic = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/token') {
      tp.tokenRequests.push(u.searchParams);
      req.resume();
      if (req.headers.authorization !== basic) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: 'good-token', expires_in: 300 }));
      return;
    }
    if (req.headers.authorization !== 'Bearer good-token') {
      req.resume();
      const m = /^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//.exec(u.pathname);
      const scope = m ? `,scope="repository:${m[1]}:${req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'pull,push'}"` : '';
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': `Bearer realm="http://${tp.host}/token",service="pier-test"${scope}` });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    const up = request(`http://${target}${req.url}`, { method: req.method, headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  tp.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  tp.stop = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return tp;
}
