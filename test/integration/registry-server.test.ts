/**
 * The registry server over raw HTTP: each endpoint and error code of distribution-spec v1.1, the
 * crash-safe upload sessions (restart mid-upload) and gc. Everything on 127.0.0.1, ephemeral ports.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { existsSync, readdirSync, readlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startRegistry, gcRegistry, type RunningRegistry } from '../../src/registry/index.ts';
import { cleanup, tempDir } from '../helpers/image.ts';
import { fsx } from '../../src/common/fsx.ts';

const TOP = join(import.meta.dirname, '..', '..');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const EMPTY = 'application/vnd.oci.empty.v1+json';
let work = '';
let storage = '';
let reg: RunningRegistry;

const sha = (b: string | Uint8Array, alg = 'sha256') => `${alg}:${createHash(alg).update(b).digest('hex')}`;

async function req(method: string, path: string, opts: { body?: string | Uint8Array; headers?: Record<string, string> } = {}) {
  const body = opts.body === undefined || typeof opts.body === 'string' ? opts.body : new Uint8Array(opts.body);
  const r = await fetch(reg.url + path, { method, body, headers: opts.headers, redirect: 'manual' });
  const text = method === 'HEAD' ? '' : await r.text();
  return { status: r.status, headers: r.headers, text, json: () => JSON.parse(text) };
}

function errCode(r: { text: string }): string {
  return JSON.parse(r.text).errors[0].code;
}

async function pushBlob(repo: string, data: string | Uint8Array): Promise<string> {
  const d = sha(data);
  const r = await req('POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, { body: data, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(r.status, 201, r.text);
  return d;
}

function manifest(config: { digest: string; size: number }, layers: { digest: string; size: number }[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: EMPTY, ...config },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
    ...extra,
  });
}

async function pushImage(repo: string, tag: string, text: string): Promise<{ digest: string; body: string; config: string; layer: string }> {
  const config = await pushBlob(repo, '{}');
  const layer = await pushBlob(repo, text);
  const body = manifest({ digest: config, size: 2 }, [{ digest: layer, size: Buffer.byteLength(text) }]);
  const r = await req('PUT', `/v2/${repo}/manifests/${tag}`, { body, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(r.status, 201, r.text);
  return { digest: r.headers.get('docker-content-digest')!, body, config, layer };
}

before(async () => {
  work = tempDir('pier-registry-');
  storage = join(work, 'storage');
  reg = await startRegistry({ listen: '127.0.0.1:0', storage });
});
after(async () => {
  await reg.close();
  cleanup(work);
});

/** The access-log line naming `needle`: written when the response is done, which can trail the client. */
async function logLine(lines: string[], needle: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const line = lines.find((l) => l.includes(needle));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no access-log line with ${needle}`);
}

test('GET /v2/ answers 200 with the Docker API version header', async () => {
  const r = await req('GET', '/v2/');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('docker-distribution-api-version'), 'registry/2.0');
});

test('monolithic push: POST then PUT; pull with GET/HEAD and Range', async () => {
  const data = 'hello, registry';
  const d = sha(data);
  const post = await req('POST', '/v2/mono/blobs/uploads/');
  assert.equal(post.status, 202);
  const loc = post.headers.get('location')!;
  assert.match(loc, /^\/v2\/mono\/blobs\/uploads\/[0-9a-f-]{36}$/);
  assert.ok(post.headers.get('docker-upload-uuid'));
  const put = await req('PUT', `${loc}?digest=${d}`, { body: data, headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(put.status, 201);
  assert.equal(put.headers.get('location'), `/v2/mono/blobs/${d}`);
  assert.equal(put.headers.get('docker-content-digest'), d);
  const head = await req('HEAD', `/v2/mono/blobs/${d}`);
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(data.length));
  assert.equal(head.headers.get('docker-content-digest'), d);
  const get = await req('GET', `/v2/mono/blobs/${d}`);
  assert.equal(get.text, data);
  const part = await req('GET', `/v2/mono/blobs/${d}`, { headers: { Range: 'bytes=7-14' } });
  assert.equal(part.status, 206);
  assert.equal(part.text, 'registry');
  assert.equal(part.headers.get('content-range'), `bytes 7-14/${data.length}`);
  // another repository does not see the blob
  const other = await req('GET', `/v2/other/blobs/${d}`);
  assert.equal(other.status, 404);
  assert.equal(errCode(other), 'BLOB_UNKNOWN');
});

test('POST with ?digest= is a single-request push; sha512 works too', async () => {
  const d = await pushBlob('single', 'one shot');
  assert.equal((await req('HEAD', `/v2/single/blobs/${d}`)).status, 200);
  const d512 = sha('five twelve', 'sha512');
  const r = await req('POST', `/v2/single/blobs/uploads/?digest=${d512}`, { body: 'five twelve' });
  assert.equal(r.status, 201, r.text);
  assert.equal((await req('GET', `/v2/single/blobs/${d512}`)).text, 'five twelve');
});

test('chunked push: an out-of-order chunk gets 416, then GET status and resume', async () => {
  const data = 'abcdefghijklmnopqrstuvwxyz';
  const d = sha(data);
  const post = await req('POST', '/v2/chunky/blobs/uploads/', { headers: { 'Content-Length': '0' } });
  assert.equal(post.status, 202);
  const loc = post.headers.get('location')!;
  const p1 = await req('PATCH', loc, { body: data.slice(0, 10), headers: { 'Content-Range': '0-9', 'Content-Type': 'application/octet-stream' } });
  assert.equal(p1.status, 202, p1.text);
  assert.equal(p1.headers.get('range'), '0-9');
  const bad = await req('PATCH', loc, { body: data.slice(15, 20), headers: { 'Content-Range': '15-19', 'Content-Type': 'application/octet-stream' } });
  assert.equal(bad.status, 416);
  assert.equal(errCode(bad), 'BLOB_UPLOAD_INVALID');
  assert.equal(bad.json().errors[0].message, 'blob upload invalid');
  assert.match(bad.json().errors[0].detail.reason, /offset 10/);
  const st = await req('GET', loc);
  assert.equal(st.status, 204);
  assert.equal(st.headers.get('range'), '0-9');
  const p2 = await req('PATCH', st.headers.get('location')!, { body: data.slice(10, 20), headers: { 'Content-Range': '10-19', 'Content-Type': 'application/octet-stream' } });
  assert.equal(p2.status, 202);
  assert.equal(p2.headers.get('range'), '0-19');
  // streamed chunk (no Content-Range) and the last bytes on the closing PUT
  const p3 = await req('PATCH', loc, { body: data.slice(20, 23) });
  assert.equal(p3.headers.get('range'), '0-22');
  const put = await req('PUT', `${loc}?digest=${d}`, { body: data.slice(23), headers: { 'Content-Range': '23-25' } });
  assert.equal(put.status, 201, put.text);
  assert.equal((await req('GET', `/v2/chunky/blobs/${d}`)).text, data);
  assert.equal((await req('GET', loc)).status, 404, 'the session is gone');
});

test('digest mismatch stores nothing', async () => {
  const wrong = sha('something else');
  const r = await req('POST', `/v2/mismatch/blobs/uploads/?digest=${wrong}`, { body: 'the real bytes' });
  assert.equal(r.status, 400);
  assert.equal(errCode(r), 'DIGEST_INVALID');
  assert.equal((await req('HEAD', `/v2/mismatch/blobs/${wrong}`)).status, 404);
  assert.ok(!existsSync(join(storage, 'blobs', 'sha256', wrong.slice(7))));
  assert.ok(!existsSync(join(storage, 'blobs', 'sha256', sha('the real bytes').slice(7))));
  const bad = await req('POST', '/v2/mismatch/blobs/uploads/?digest=sha256:nothex', { body: 'x' });
  assert.equal(bad.status, 400);
  assert.equal(errCode(bad), 'DIGEST_INVALID');
  const md5 = await req('GET', '/v2/mismatch/blobs/md5:d41d8cd98f00b204e9800998ecf8427e');
  assert.equal(errCode(md5), 'DIGEST_INVALID');
});

test('invalid names, references and unknown sessions', async () => {
  const r = await req('GET', '/v2/Upper/Case/tags/list');
  assert.equal(r.status, 400);
  assert.equal(errCode(r), 'NAME_INVALID');
  assert.equal(errCode(await req('POST', '/v2/a--/blobs/uploads/')), 'NAME_INVALID');
  assert.equal(errCode(await req('GET', '/v2/ok/manifests/-bad-tag')), 'MANIFEST_INVALID');
  const u = await req('PATCH', '/v2/ok/blobs/uploads/00000000-0000-0000-0000-000000000000', { body: 'x' });
  assert.equal(u.status, 404);
  assert.equal(errCode(u), 'BLOB_UPLOAD_UNKNOWN');
  const nope = await req('GET', '/v2/never/pushed/manifests/latest');
  assert.equal(nope.status, 404);
  assert.equal(errCode(nope), 'NAME_UNKNOWN');
});

test('manifests: exact bytes, content type, 413, unknown blobs, wrong content type', async () => {
  const img = await pushImage('app', 'v1', 'layer one');
  const get = await req('GET', '/v2/app/manifests/v1');
  assert.equal(get.status, 200);
  assert.equal(get.text, img.body);
  assert.equal(get.headers.get('content-type'), OCI_MANIFEST);
  assert.equal(get.headers.get('docker-content-digest'), sha(img.body));
  const byDigest = await req('HEAD', `/v2/app/manifests/${img.digest}`);
  assert.equal(byDigest.status, 200);
  assert.equal(byDigest.headers.get('content-length'), String(Buffer.byteLength(img.body)));
  // odd whitespace is kept byte for byte
  const spaced = img.body.replace('{', '{  ') + '\n';
  const put = await req('PUT', `/v2/app/manifests/${sha(spaced)}`, { body: spaced, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(put.status, 201, put.text);
  assert.equal((await req('GET', `/v2/app/manifests/${sha(spaced)}`)).text, spaced);
  const wrongDigest = await req('PUT', `/v2/app/manifests/${sha('x')}`, { body: spaced, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(errCode(wrongDigest), 'DIGEST_INVALID');
  const big = await req('PUT', '/v2/app/manifests/big', { body: Buffer.alloc(4 * 1024 * 1024 + 1, 32), headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(big.status, 413);
  const unknown = manifest({ digest: img.config, size: 2 }, [{ digest: sha('not pushed'), size: 10 }]);
  const u = await req('PUT', '/v2/app/manifests/broken', { body: unknown, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(u.status, 400);
  assert.equal(errCode(u), 'MANIFEST_BLOB_UNKNOWN');
  const wrongType = await req('PUT', '/v2/app/manifests/wrongtype', { body: img.body, headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' } });
  assert.equal(errCode(wrongType), 'MANIFEST_INVALID');
  const notJson = await req('PUT', '/v2/app/manifests/nj', { body: 'nope', headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(errCode(notJson), 'MANIFEST_INVALID');
  const tags = (await req('GET', '/v2/app/tags/list')).json();
  assert.deepEqual(tags, { name: 'app', tags: ['v1'] }, 'nothing stored by the failed PUTs');
});

test('cross-repository mount', async () => {
  const d = await pushBlob('mount-src', 'shared layer');
  const m = await req('POST', `/v2/mount-dst/blobs/uploads/?mount=${d}&from=mount-src`);
  assert.equal(m.status, 201);
  assert.equal(m.headers.get('location'), `/v2/mount-dst/blobs/${d}`);
  assert.equal((await req('GET', `/v2/mount-dst/blobs/${d}`)).text, 'shared layer');
  // a blob the source repository lacks: a normal session instead
  const miss = await req('POST', `/v2/mount-dst2/blobs/uploads/?mount=${sha('absent')}&from=mount-src`);
  assert.equal(miss.status, 202);
  assert.match(miss.headers.get('location')!, /\/blobs\/uploads\//);
});

test('tag list: lexical order, n/last pagination with Link', async () => {
  for (const t of ['b', 'a', 'c', 'B', 'd']) await pushImage('paged', t, 'same');
  assert.deepEqual((await req('GET', '/v2/paged/tags/list')).json().tags, ['B', 'a', 'b', 'c', 'd']);
  const p1 = await req('GET', '/v2/paged/tags/list?n=2');
  assert.deepEqual(p1.json().tags, ['B', 'a']);
  const link = p1.headers.get('link')!;
  assert.equal(link, '</v2/paged/tags/list?n=2&last=a>; rel="next"');
  const p2 = await req('GET', /<([^>]+)>/.exec(link)![1]);
  assert.deepEqual(p2.json().tags, ['b', 'c']);
  const p3 = await req('GET', '/v2/paged/tags/list?n=2&last=c');
  assert.deepEqual(p3.json().tags, ['d']);
  assert.equal(p3.headers.get('link'), null);
  const zero = await req('GET', '/v2/paged/tags/list?n=0');
  assert.deepEqual(zero.json().tags, []);
  assert.equal(zero.headers.get('link'), null);
  assert.equal(errCode(await req('GET', '/v2/no-such-repo/tags/list')), 'NAME_UNKNOWN');
});

test('catalog: every repository, nested names included, sorted, paged with Link', async () => {
  for (const r of ['cat/a/deep', 'cat/a', 'cat-b', 'cat0']) await pushImage(r, 'x', 'catalog one');
  const all = (await req('GET', '/v2/_catalog')).json().repositories as string[];
  assert.deepEqual(all, [...all].sort());
  assert.deepEqual(all.filter((r) => r.startsWith('cat')), ['cat-b', 'cat/a', 'cat/a/deep', 'cat0']);
  const p1 = await req('GET', '/v2/_catalog?n=2');
  assert.deepEqual(p1.json().repositories, all.slice(0, 2));
  assert.equal(p1.headers.get('link'), `</v2/_catalog?n=2&last=${encodeURIComponent(all[1])}>; rel="next"`);
  const rest: string[] = [];
  for (let next: string | undefined = /<([^>]+)>/.exec(p1.headers.get('link')!)![1]; next;) {
    const p = await req('GET', next);
    rest.push(...p.json().repositories);
    next = /<([^>]+)>/.exec(p.headers.get('link') ?? '')?.[1];
  }
  assert.deepEqual([...all.slice(0, 2), ...rest], all);
  assert.equal((await req('GET', '/v2/_catalog?n=many')).status, 400);
  assert.equal((await req('DELETE', '/v2/_catalog')).status, 405);
});

test('referrers: OCI-Subject on PUT, list with and without artifactType filter', async () => {
  const img = await pushImage('refs', 'latest', 'subject layer');
  const empty = await req('GET', `/v2/refs/referrers/${img.digest}`);
  assert.equal(empty.status, 200);
  assert.deepEqual(empty.json().manifests, []);
  const cfg = await pushBlob('refs', '{}');
  const put = async (artifactType: string, note: string) => {
    const body = manifest({ digest: cfg, size: 2 }, [{ digest: cfg, size: 2 }], {
      artifactType, subject: { mediaType: OCI_MANIFEST, digest: img.digest, size: Buffer.byteLength(img.body) }, annotations: { note },
    });
    const r = await req('PUT', `/v2/refs/manifests/${sha(body)}`, { body, headers: { 'Content-Type': OCI_MANIFEST } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.get('oci-subject'), img.digest);
    return sha(body);
  };
  const sig = await put('application/vnd.example.sig', 'signature');
  const sbom = await put('application/vnd.example.sbom', 'sbom');
  const all = await req('GET', `/v2/refs/referrers/${img.digest}`);
  assert.equal(all.headers.get('content-type'), 'application/vnd.oci.image.index.v1+json');
  const ix = all.json();
  assert.equal(ix.schemaVersion, 2);
  assert.deepEqual(ix.manifests.map((m: { digest: string }) => m.digest).sort(), [sig, sbom].sort());
  const one = ix.manifests.find((m: { digest: string }) => m.digest === sig);
  assert.equal(one.artifactType, 'application/vnd.example.sig');
  assert.deepEqual(one.annotations, { note: 'signature' });
  const filtered = await req('GET', `/v2/refs/referrers/${img.digest}?artifactType=application/vnd.example.sbom`);
  assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(filtered.json().manifests.map((m: { digest: string }) => m.digest), [sbom]);
  // unknown subject is accepted
  const body = manifest({ digest: cfg, size: 2 }, [], { subject: { mediaType: OCI_MANIFEST, digest: sha('ghost'), size: 1 } });
  assert.equal((await req('PUT', `/v2/refs/manifests/${sha(body)}`, { body, headers: { 'Content-Type': OCI_MANIFEST } })).status, 201);
  assert.equal(errCode(await req('GET', '/v2/refs/referrers/sha256:abc')), 'DIGEST_INVALID');
  // a fallback-tag index (kept by clients of registries without the API) is merged in
  const legacy = manifest({ digest: cfg, size: 2 }, [], { artifactType: 'application/vnd.example.legacy' });
  const legacyDigest = sha(legacy);
  assert.equal((await req('PUT', `/v2/refs/manifests/${legacyDigest}`, { body: legacy, headers: { 'Content-Type': OCI_MANIFEST } })).status, 201);
  const fallback = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [
    { mediaType: OCI_MANIFEST, digest: legacyDigest, size: Buffer.byteLength(legacy), artifactType: 'application/vnd.example.legacy' },
  ] });
  const ft = await req('PUT', `/v2/refs/manifests/${img.digest.replace(':', '-')}`, { body: fallback, headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' } });
  assert.equal(ft.status, 201, ft.text);
  const merged = await req('GET', `/v2/refs/referrers/${img.digest}?artifactType=application/vnd.example.legacy`);
  assert.deepEqual(merged.json().manifests.map((m: { digest: string }) => m.digest), [legacyDigest]);
  // deleting a referrer removes it from the list
  assert.equal((await req('DELETE', `/v2/refs/manifests/${sig}`)).status, 202);
  assert.deepEqual((await req('GET', `/v2/refs/referrers/${img.digest}`)).json().manifests.map((m: { digest: string }) => m.digest), [sbom, legacyDigest].sort());
});

test('referrers: a list larger than one page is split, joined by Link', async () => {
  const small = await startRegistry({ listen: '127.0.0.1:0', storage: join(work, 'paged'), referrersPageBytes: 700 });
  try {
    const get = async (path: string) => {
      const r = await fetch(small.url + path);
      return { link: r.headers.get('link'), body: await r.json() as { manifests: { digest: string; artifactType?: string }[] } };
    };
    const push = async (data: string) => {
      const d = sha(data);
      assert.equal((await fetch(`${small.url}/v2/paged/blobs/uploads/?digest=${d}`, { method: 'POST', body: data })).status, 201);
      return d;
    };
    const put = async (ref: string, body: string) => {
      const r = await fetch(`${small.url}/v2/paged/manifests/${ref}`, { method: 'PUT', body, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(r.status, 201, await r.text());
    };
    const cfg = await push('{}');
    const subjectBody = manifest({ digest: cfg, size: 2 }, []);
    await put('subject', subjectBody);
    const subject = { mediaType: OCI_MANIFEST, digest: sha(subjectBody), size: Buffer.byteLength(subjectBody) };
    const made: string[] = [];
    for (let i = 0; i < 7; i++) {
      const body = manifest({ digest: cfg, size: 2 }, [], { artifactType: `application/vnd.example.${i % 2 ? 'odd' : 'even'}`, subject, annotations: { i: String(i) } });
      await put(sha(body), body);
      made.push(sha(body));
    }
    const walk = async (first: string) => {
      const seen: string[] = [];
      let path: string | null = first;
      let pages = 0;
      while (path) {
        const page = await get(path);
        pages++;
        seen.push(...page.body.manifests.map((m) => m.digest));
        path = page.link ? /^<([^>]+)>; rel="next"$/.exec(page.link)![1] : null;
      }
      return { seen, pages };
    };
    const all = await walk(`/v2/paged/referrers/${subject.digest}`);
    assert.ok(all.pages > 1, `expected several pages, got ${all.pages}`);
    assert.deepEqual(all.seen, [...made].sort(), 'every referrer exactly once, in digest order');
    const even = await walk(`/v2/paged/referrers/${subject.digest}?artifactType=application/vnd.example.even`);
    assert.equal(even.seen.length, 4, 'the filter is carried into the next-page links');
  } finally {
    await small.close();
  }
});

test('non-distributable layers need not be pushed; tags pushed as ?tag= with a manifest by digest', async () => {
  const cfg = await pushBlob('foreign', '{}');
  const foreign = JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: EMPTY, digest: cfg, size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: sha('elsewhere'), size: 9, urls: ['https://example.com/layer'] }],
  });
  const ok = await req('PUT', '/v2/foreign/manifests/win', { body: foreign, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(ok.status, 201, ok.text);
  // an ordinary layer that is missing is still refused
  const missing = foreign.replace('nondistributable.v1.tar+gzip', 'v1.tar+gzip');
  assert.equal(errCode(await req('PUT', '/v2/foreign/manifests/broken', { body: missing, headers: { 'Content-Type': OCI_MANIFEST } })), 'MANIFEST_BLOB_UNKNOWN');

  const body = manifest({ digest: cfg, size: 2 }, []);
  const r = await req('PUT', `/v2/foreign/manifests/${sha(body)}?tag=1.2.3&tag=1.2&tag=latest`, { body, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get('oci-tag'), '1.2.3, 1.2, latest');
  for (const t of ['1.2.3', '1.2', 'latest']) assert.equal((await req('GET', `/v2/foreign/manifests/${t}`)).text, body);
  const bad = await req('PUT', `/v2/foreign/manifests/${sha(body)}?tag=ok&tag=-bad`, { body, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(errCode(bad), 'MANIFEST_INVALID');
  const byTag = await req('PUT', '/v2/foreign/manifests/v9?tag=also', { body, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal(byTag.status, 400);
  assert.deepEqual((await req('GET', '/v2/foreign/tags/list')).json().tags, ['1.2', '1.2.3', 'latest', 'win'], 'the refused PUTs tagged nothing');
});

test('deletes: a tag, a manifest by digest (all its tags), a blob', async () => {
  const img = await pushImage('del', 'one', 'to delete');
  await req('PUT', '/v2/del/manifests/two', { body: img.body, headers: { 'Content-Type': OCI_MANIFEST } });
  await req('PUT', '/v2/del/manifests/three', { body: img.body, headers: { 'Content-Type': OCI_MANIFEST } });
  assert.equal((await req('DELETE', '/v2/del/manifests/three')).status, 202);
  assert.deepEqual((await req('GET', '/v2/del/tags/list')).json().tags, ['one', 'two']);
  assert.equal((await req('DELETE', `/v2/del/manifests/${img.digest}`)).status, 202);
  assert.deepEqual((await req('GET', '/v2/del/tags/list')).json().tags, []);
  const gone = await req('GET', `/v2/del/manifests/${img.digest}`);
  assert.equal(gone.status, 404);
  assert.equal(errCode(gone), 'MANIFEST_UNKNOWN');
  assert.equal(errCode(await req('DELETE', '/v2/del/manifests/one')), 'MANIFEST_UNKNOWN');
  assert.equal((await req('DELETE', `/v2/del/blobs/${img.layer}`)).status, 202);
  assert.equal((await req('HEAD', `/v2/del/blobs/${img.layer}`)).status, 404);
  assert.equal(errCode(await req('DELETE', `/v2/del/blobs/${img.layer}`)), 'BLOB_UNKNOWN');
  // cancel an upload
  const loc = (await req('POST', '/v2/del/blobs/uploads/')).headers.get('location')!;
  assert.equal((await req('DELETE', loc)).status, 204);
  assert.equal((await req('GET', loc)).status, 404);
});

test('restart mid-upload: a new server on the same storage finishes the session', async () => {
  const data = Buffer.alloc(100_000, 7);
  const post = await req('POST', '/v2/restart/blobs/uploads/');
  const loc = post.headers.get('location')!;
  assert.equal((await req('PATCH', loc, { body: data.subarray(0, 60_000), headers: { 'Content-Range': '0-59999' } })).status, 202);
  await reg.close();
  // a crash mid-chunk leaves unacknowledged bytes past the offset: they are cut off on resume
  const id = loc.split('/').pop()!;
  const { appendFileSync } = await import('node:fs');
  appendFileSync(join(storage, '_uploads', id, 'data'), Buffer.alloc(123, 9));
  reg = await startRegistry({ listen: '127.0.0.1:0', storage });
  const st = await req('GET', loc);
  assert.equal(st.status, 204);
  assert.equal(st.headers.get('range'), '0-59999');
  const put = await req('PUT', `${loc}?digest=${sha(data)}`, { body: data.subarray(60_000), headers: { 'Content-Range': '60000-99999' } });
  assert.equal(put.status, 201, put.text);
  const got = await fetch(`${reg.url}/v2/restart/blobs/${sha(data)}`);
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), data);
});

test('gc: dry run lists, sweep deletes unreferenced blobs only, uploads in flight untouched', async () => {
  const img = await pushImage('gc', 'keep', 'kept layer');
  const orphan = await pushBlob('gc', 'orphan blob');
  const inflight = (await req('POST', '/v2/gc/blobs/uploads/')).headers.get('location')!;
  await req('PATCH', inflight, { body: 'partial' });
  const recent = await gcRegistry({ storage, dryRun: true });
  assert.ok(recent.kept.includes(orphan) && !recent.swept.includes(orphan), 'young blobs are kept');
  // age every pool blob and link
  const old = new Date(Date.now() - 3600_000);
  const age = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) age(p); else utimesSync(p, old, old);
    }
  };
  age(join(storage, 'blobs'));
  age(join(storage, 'repositories'));
  const dry = spawnSync(process.execPath, [join(TOP, 'src/cli/pier.ts'), 'registry', 'gc', '--dry-run', '--storage', storage], { encoding: 'utf8' });
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`would delete ${orphan}`));
  assert.equal((await req('HEAD', `/v2/gc/blobs/${orphan}`)).status, 200, 'dry run deleted nothing');
  const res = await gcRegistry({ storage });
  assert.ok(res.swept.includes(orphan));
  assert.ok(!res.swept.includes(img.layer) && !res.swept.includes(img.config) && !res.swept.includes(img.digest));
  assert.equal((await req('HEAD', `/v2/gc/blobs/${orphan}`)).status, 404);
  assert.equal((await req('GET', '/v2/gc/manifests/keep')).text, img.body);
  assert.equal((await req('GET', `/v2/gc/blobs/${img.layer}`)).text, 'kept layer');
  const fin = await req('PUT', `${inflight}?digest=${sha('partial')}`);
  assert.equal(fin.status, 201, 'the in-flight upload completes after gc');
  // an abandoned session (untouched past the upload TTL) is removed; a live one is not
  const abandoned = (await req('POST', '/v2/gc/blobs/uploads/')).headers.get('location')!;
  const live = (await req('POST', '/v2/gc/blobs/uploads/')).headers.get('location')!;
  const abandonedId = abandoned.split('/').pop()!;
  const ancient = new Date(Date.now() - 30 * 24 * 3600_000);
  utimesSync(join(storage, '_uploads', abandonedId, 'data'), ancient, ancient);
  const purge = await gcRegistry({ storage });
  assert.deepEqual(purge.staleUploads, [abandonedId]);
  assert.equal((await req('GET', abandoned)).status, 404);
  assert.equal((await req('GET', live)).status, 204);
});

/** GET over node:http with the given agent: status, headers, body, and whether the socket was reused. */
function httpGet(path: string, agent: Agent, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(reg.url + path, { agent, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), reused: r.reusedSocket }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });
}

/**
 * What a transfer left behind in this process: open fds on files of the storage (the blob or upload
 * file), and threads (a transfer thread of the addon that did not end). Sockets are not counted:
 * fetch keeps its own connections alive.
 */
function leftovers(): { files: string[]; threads: number } {
  const files: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(storage)) files.push(target);
    } catch { /* closed meanwhile */ }
  }
  return { files, threads: readdirSync('/proc/self/task').length };
}

/** Wait (up to 5 s) until no storage file is open and the thread count is back to `threads`. */
async function settle(threads: number): Promise<{ files: string[]; threads: number }> {
  let now = leftovers();
  for (let i = 0; i < 250 && (now.files.length > 0 || now.threads > threads); i++) {
    await new Promise((r) => setTimeout(r, 20));
    now = leftovers();
  }
  return now;
}

async function assertNoLeftovers(base: { threads: number }, what: string): Promise<void> {
  const now = await settle(base.threads);
  assert.deepEqual(now.files, [], `no storage file of ${what} is left open`);
  assert.ok(now.threads <= base.threads, `no thread of ${what} is left running (${now.threads} > ${base.threads})`);
}

test('large blobs go out by sendfile: whole, ranges, keep-alive reuse, pipelined requests, access log bytes', async () => {
  assert.equal(typeof fsx().sendfile, 'function', 'the pierfs addon has sendfile (run scripts/setup)');
  const data = randomBytes((3 << 20) + 12345);
  const d = await pushBlob('big', data);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const a = await httpGet(`/v2/big/blobs/${d}`, agent);
    assert.equal(a.status, 200);
    assert.equal(a.headers['content-length'], String(data.length));
    assert.ok(a.body.equals(data), 'whole body');
    const b = await httpGet(`/v2/big/blobs/${d}`, agent, { Range: 'bytes=1000-2999999' });
    assert.equal(b.status, 206);
    assert.equal(b.headers['content-range'], `bytes 1000-2999999/${data.length}`);
    assert.ok(b.body.equals(data.subarray(1000, 3000000)), 'ranged body');
    assert.ok(b.reused, 'the keep-alive connection carries on after a sendfile body');
    const c = await httpGet(`/v2/big/blobs/${d}`, agent, { Range: `bytes=-${600 << 10}` });
    assert.equal(c.status, 206);
    assert.ok(c.body.equals(data.subarray(data.length - (600 << 10))), 'suffix range');
    const v2 = await httpGet('/v2/', agent);
    assert.equal(v2.status, 200);
    assert.ok(v2.reused);
  } finally {
    agent.destroy();
  }
  // two requests pipelined on one connection: the second answer must follow the whole first body
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const sock = connect(Number(new URL(reg.url).port), '127.0.0.1', () => {
      const r = `GET /v2/big/blobs/${d} HTTP/1.1\r\nHost: x\r\n\r\n`;
      sock.write(r + r.replace('\r\n\r\n', '\r\nRange: bytes=5-9\r\nConnection: close\r\n\r\n'));
    });
    const parts: Buffer[] = [];
    sock.on('data', (c: Buffer) => parts.push(c));
    sock.on('end', () => resolve(Buffer.concat(parts)));
    sock.on('error', reject);
  });
  const split = raw.indexOf('\r\n\r\n') + 4;
  assert.match(raw.subarray(0, split).toString('latin1'), /^HTTP\/1\.1 200 /);
  assert.ok(raw.subarray(split, split + data.length).equals(data), 'first pipelined body');
  const second = raw.subarray(split + data.length).toString('latin1');
  assert.match(second, /^HTTP\/1\.1 206 /);
  assert.ok(raw.subarray(raw.length - 5).equals(data.subarray(5, 10)), 'second pipelined body');
  // the access log and metrics count the bytes sent by sendfile
  const lines: string[] = [];
  const logged = await startRegistry({ listen: '127.0.0.1:0', storage, accessLog: (l) => lines.push(l) });
  try {
    const r = await fetch(`${logged.url}/v2/big/blobs/${d}`);
    assert.equal((await r.arrayBuffer()).byteLength, data.length);
    const line = await logLine(lines, `GET /v2/big/blobs/${d}`);
    const bytes = Number(/" 200 (\d+) /.exec(line)![1]);
    assert.ok(bytes > data.length && bytes < data.length + 1024, `log says ${bytes} bytes`);
    const m = await (await fetch(`${logged.url}/metrics`)).text();
    assert.ok(Number(/pier_registry_sent_bytes_total (\d+)/.exec(m)![1]) > data.length);
  } finally {
    await logged.close();
  }
});

test('sendfile: a client that drops or stalls mid-body costs nothing lasting', async () => {
  const data = randomBytes(48 << 20); // more than the socket buffers hold
  const d = await pushBlob('drop', data);
  await new Promise((r) => setTimeout(r, 50));
  const base = leftovers();
  // drops after the first bytes
  await new Promise<void>((resolve, reject) => {
    const r = httpRequest(`${reg.url}/v2/drop/blobs/${d}`, { agent: false }, (res) => {
      res.once('data', () => { res.destroy(); resolve(); });
    });
    r.on('error', reject);
    r.end();
  });
  // reads nothing for a while, then goes away
  // a raw GET of the blob whose answer is not read
  const pausedGet = (url: string) => new Promise<Socket>((resolve) => {
    const sock = connect(Number(new URL(url).port), '127.0.0.1', () => {
      sock.write(`GET /v2/drop/blobs/${d} HTTP/1.1\r\nHost: x\r\n\r\n`);
      sock.pause();
      resolve(sock);
    });
  });
  const stalled = await pausedGet(reg.url);
  await new Promise((r) => setTimeout(r, 300));
  stalled.destroy();
  await assertNoLeftovers(base, 'a dropped transfer');
  // and the server serves on
  const again = await fetch(`${reg.url}/v2/drop/blobs/${d}`);
  assert.ok(Buffer.from(await again.arrayBuffer()).equals(data));
  // a server closed mid-transfer ends it too
  const other = await startRegistry({ listen: '127.0.0.1:0', storage });
  const inflight = await pausedGet(other.url);
  await new Promise((r) => setTimeout(r, 100));
  const closed = new Promise((r) => inflight.on('close', r));
  inflight.resume();
  inflight.on('data', () => {});
  await other.close();
  await closed;
  await assertNoLeftovers(base, 'a transfer cut by the server closing');
});

/** A raw HTTP/1.1 request on a fresh connection: status line, headers and body of the answer. */
function rawRequest(head: string, body: Uint8Array | undefined, opts: { stopAfter?: number } = {}): Promise<{ status: number; headers: string; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(Number(new URL(reg.url).port), '127.0.0.1', () => {
      sock.write(head);
      if (body) sock.write(opts.stopAfter === undefined ? body : body.subarray(0, opts.stopAfter), () => {
        if (opts.stopAfter !== undefined) setTimeout(() => sock.destroy(), 50);
      });
    });
    const parts: Buffer[] = [];
    const answer = () => {
      const all = Buffer.concat(parts).toString('latin1').replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
      const i = all.indexOf('\r\n\r\n');
      return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(all)?.[1] ?? 0), headers: i < 0 ? all : all.slice(0, i), text: i < 0 ? '' : all.slice(i + 4), whole: i >= 0 && all.length - i - 4 >= Number(/\r\ncontent-length: (\d+)/i.exec(all)?.[1] ?? 0) };
    };
    sock.on('data', (c: Buffer) => {
      parts.push(c);
      if (answer().whole) { sock.destroy(); resolve(answer()); } // do not wait for a kept-alive connection to close
    });
    sock.on('close', () => resolve(answer()));
    sock.on('error', (err) => { if (opts.stopAfter === undefined) reject(err); });
  });
}

/** PIER_REGISTRY_NATIVE_IO=0 runs the same tests through Node's streams (the fallback paths). */
const NATIVE = process.env.PIER_REGISTRY_NATIVE_IO !== '0';

test('large uploads are read off the connection by the addon: PUT, POST ?digest=, PATCH chunks, mismatch, a dropped body', async () => {
  assert.equal(typeof fsx().recvToFile, 'function', 'the pierfs addon has recvToFile (run scripts/setup)');
  const base = leftovers();
  const data = randomBytes((5 << 20) + 4321);
  const d = sha(data);
  // monolithic PUT: the answer closes the connection (Node's parser never saw the body)
  const loc = (await req('POST', '/v2/up/blobs/uploads/')).headers.get('location')!;
  const put = await rawRequest(`PUT ${loc}?digest=${d} HTTP/1.1\r\nHost: x\r\nContent-Length: ${data.length}\r\n\r\n`, data);
  assert.equal(put.status, 201, put.text);
  if (NATIVE) assert.match(put.headers, /\r\nConnection: close/i, 'the body was read by the addon');
  assert.ok(Buffer.from(await (await fetch(`${reg.url}/v2/up/blobs/${d}`)).arrayBuffer()).equals(data));
  // POST ?digest= with the body, through fetch (keep-alive client: it must cope with the close)
  const other = randomBytes(3 << 20);
  const single = await req('POST', `/v2/up/blobs/uploads/?digest=${sha(other)}`, { body: other });
  assert.equal(single.status, 201, single.text);
  assert.equal((await req('GET', '/v2/')).status, 200, 'the client carries on on a new connection');
  // chunks: 2 MiB + the rest, the second one cut off by a dropped connection, then resumed
  const loc2 = (await req('POST', '/v2/up/blobs/uploads/')).headers.get('location')!;
  const first = await req('PATCH', loc2, { body: data.subarray(0, 2 << 20), headers: { 'Content-Range': `0-${(2 << 20) - 1}` } });
  assert.equal(first.status, 202, first.text);
  assert.equal(first.headers.get('range'), `0-${(2 << 20) - 1}`);
  const rest = data.subarray(2 << 20);
  await rawRequest(`PATCH ${loc2} HTTP/1.1\r\nHost: x\r\nContent-Range: ${2 << 20}-${data.length - 1}\r\nContent-Length: ${rest.length}\r\n\r\n`, rest, { stopAfter: 1 << 20 });
  let status = await req('GET', loc2);
  for (let i = 0; i < 50 && status.headers.get('range') !== `0-${(2 << 20) - 1}`; i++) {
    await new Promise((r) => setTimeout(r, 20)); // the server may still be cutting the broken chunk off
    status = await req('GET', loc2);
  }
  assert.equal(status.headers.get('range'), `0-${(2 << 20) - 1}`, 'the broken chunk is not acknowledged');
  const fin = await req('PUT', `${loc2}?digest=${d}`, { body: rest, headers: { 'Content-Range': `${2 << 20}-${data.length - 1}` } });
  assert.equal(fin.status, 201, fin.text);
  // a body that does not match its digest stores nothing
  const loc3 = (await req('POST', '/v2/up/blobs/uploads/')).headers.get('location')!;
  const wrong = sha(Buffer.concat([data, Buffer.from('x')]));
  const bad = await req('PUT', `${loc3}?digest=${wrong}`, { body: data });
  assert.equal(bad.status, 400);
  assert.equal(errCode(bad), 'DIGEST_INVALID');
  assert.equal((await req('HEAD', `/v2/up/blobs/${wrong}`)).status, 404);
  assert.equal((await req('GET', loc3)).status, 404, 'the session is gone');
  // a Content-Range that disagrees with the body's length
  const loc4 = (await req('POST', '/v2/up/blobs/uploads/')).headers.get('location')!;
  const short = await req('PATCH', loc4, { body: data.subarray(0, 2 << 20), headers: { 'Content-Range': `0-${(3 << 20) - 1}` } });
  assert.equal(short.status, 400);
  assert.equal((await req('GET', loc4)).headers.get('range'), '0-0');
  await assertNoLeftovers(base, 'an upload');
  // the access log counts the bytes the addon read
  const lines: string[] = [];
  const logged = await startRegistry({ listen: '127.0.0.1:0', storage, accessLog: (l) => lines.push(l) });
  try {
    const r = await fetch(`${logged.url}/v2/up2/blobs/uploads/?digest=${d}`, { method: 'POST', body: new Uint8Array(data) });
    assert.equal(r.status, 201);
    const line = await logLine(lines, 'POST /v2/up2/blobs/uploads/');
    const m = await (await fetch(`${logged.url}/metrics`)).text();
    assert.ok(Number(/pier_registry_received_bytes_total (\d+)/.exec(m)![1]) > data.length, line);
  } finally {
    await logged.close();
  }
});
