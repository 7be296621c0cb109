/**
 * pier's client against pier's own registry: push, pull into a fresh store, push again (nothing sent).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageService } from '../../src/image/index.ts';
import { startRegistry, Pusher, Puller, parseRemoteReference } from '../../src/registry/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'pier-roundtrip-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('push to and pull from pier registry', async () => {
  const reg = await startRegistry({ listen: '127.0.0.1:0', storage: join(dir, 'storage') });
  try {
    const host = new URL(reg.url).host;
    const a = new ImageService({ root: join(dir, 'a') });
    await a.bootstrap('busybox');
    const dest = parseRemoteReference(`${host}/library/busybox:rt`);
    const first = await new Pusher(a, dest, { plainHttp: true }).push('busybox:latest');
    assert.ok(first.blobs.every((b) => b.action === 'pushed'), JSON.stringify(first.blobs));
    const again = await new Pusher(a, dest, { plainHttp: true }).push('busybox:latest');
    assert.ok(again.blobs.every((b) => b.action === 'exists'), JSON.stringify(again.blobs));

    const b = new ImageService({ root: join(dir, 'b') });
    const pulled = await new Puller(b, dest, { plainHttp: true }).pull();
    assert.equal(pulled.digest, first.digest);
    assert.equal((await b.resolve(`${host}/library/busybox:rt`)).manifestDigest, (await a.resolve('busybox:latest')).manifestDigest);
  } finally {
    await reg.close();
  }
});
