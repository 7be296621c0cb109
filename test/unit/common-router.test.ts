import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Router, compilePattern } from '../../src/common/router.ts';
import { HttpError } from '../../src/common/http-server.ts';

const fake = (path: string) => ({ req: {} as IncomingMessage, res: {} as ServerResponse, url: new URL(path, 'http://x') });

async function call<R, X extends object>(r: Router<R, X>, method: string, path: string, extra: X): Promise<R | string> {
  const url = new URL(path, 'http://x');
  const f = r.resolve(method, url.pathname);
  if (f.kind === 'none') return '404';
  if (f.kind === 'method') return `405 ${f.allowed.join(',')}`;
  return r.dispatch({ ...fake(path), ...extra }, f);
}

test('router: segments, multi-segment and optional parameters, typed and decoded', async () => {
  const r = new Router<string, { who: string }>({ prefix: '/v2' })
    .on('*', '/:name+/blobs/uploads/:id?', (c) => `upload ${c.params.name} [${c.params.id}] by ${c.who}`)
    .on('GET', '/:name+/blobs/:digest', (c) => `blob ${c.params.name} ${c.params.digest}`)
    .on(['GET', 'HEAD'], '/:name+/manifests/:ref', (c) => `manifest ${c.params.name} ${c.params.ref}`);
  assert.equal(await call(r, 'POST', '/v2/a/b/c/blobs/uploads/', { who: 'me' }), 'upload a/b/c [] by me');
  assert.equal(await call(r, 'PATCH', '/v2/a/blobs/uploads/u1', { who: 'me' }), 'upload a [u1] by me');
  assert.equal(await call(r, 'GET', '/v2/lib/x/blobs/sha256:ab', { who: '' }), 'blob lib/x sha256:ab');
  assert.equal(await call(r, 'GET', '/v2/x/manifests/v%201', { who: '' }), 'manifest x v 1');
  assert.equal(await call(r, 'DELETE', '/v2/x/manifests/t', { who: '' }), '405 GET,HEAD');
  assert.equal(await call(r, 'GET', '/v2/x/nothing', { who: '' }), '404');
  assert.equal(await call(r, 'GET', '/x/manifests/t', { who: '' }), '404', 'the prefix is required');
  await assert.rejects(call(r, 'GET', '/v2/x/manifests/%zz', { who: '' }), (e: unknown) => e instanceof HttpError && e.status === 400);
});

test('router: query parameters a route names are the only ones it takes', async () => {
  const r = new Router<string>().on('DELETE', '/c/:id', (c) => `${c.params.id} ${c.query.get('force')}`, { query: ['force', 'v'] }).on('GET', '/any', () => 'ok');
  assert.equal(await call(r, 'DELETE', '/c/1?force=1', {}), '1 1');
  await assert.rejects(call(r, 'DELETE', '/c/1?forse=1', {}), /unknown query parameter "forse" \(this endpoint takes force, v\)/);
  await assert.rejects(call(r, 'DELETE', '/c/1?v=1&v=0', {}), /query parameter v given more than once/);
  assert.equal(await call(r, 'GET', '/any?whatever=1', {}), 'ok', 'a route naming none takes any');
});

test('router: middleware runs outermost first, may stop the chain or wrap the answer', async () => {
  const order: string[] = [];
  const r = new Router<string>()
    .use(async (c, next) => { order.push('outer<'); const v = await next(); order.push('outer>'); return `[${v}]`; })
    .use(async (c, next) => { if (c.params.id === 'denied') throw new HttpError(403, 'no'); order.push('inner'); return next(); })
    .on('GET', '/t/:id', (c) => { order.push('handler'); return c.params.id; });
  assert.equal(await call(r, 'GET', '/t/7', {}), '[7]');
  assert.deepEqual(order, ['outer<', 'inner', 'handler', 'outer>']);
  await assert.rejects(call(r, 'GET', '/t/denied', {}), /no/);
});

test('router: bad patterns are refused when a route is added', () => {
  assert.throws(() => compilePattern('/a/:x?/b'), /only the last parameter may be optional/);
  assert.throws(() => compilePattern('/a/:x/:x'), /parameter x twice/);
  assert.deepEqual(compilePattern('/a/:x+/b/:y').names, ['x', 'y']);
});
