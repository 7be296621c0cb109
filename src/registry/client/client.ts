/**
 * The distribution API of one registry host: manifests, blobs, uploads (monolithic, chunked with
 * resume, cross-repository mount). Registry errors become one-line PierErrors `CODE: message`.
 */
import type { Readable } from 'node:stream';
import { PierError } from '../../common/errors.ts';
import { digestOf } from '../../common/digest.ts';
import { MEDIA_TYPES } from '../../image/index.ts';
import { Transport, type Response } from './transport.ts';
import type { TlsMaterial } from './certs.ts';
import type { Credentials } from './auth-store.ts';
import type { FileBody } from './native-io.ts';

export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerManifestList,
].join(', ');

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export interface ClientOptions {
  plainHttp: boolean;
  credentials?: Credentials;
  /** CAs and a client certificate for HTTPS (certs.d) */
  tls?: TlsMaterial;
}

/** A one-line error from a registry answer: the first `{"errors":[{code,message}]}` entry, else the status. */
export async function registryError(res: Response, what: string): Promise<PierError> {
  let text = '';
  try { text = await res.text(); } catch { /* keep the status */ }
  try {
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
    const e = body.errors?.[0];
    // the spec's message is per code; what exactly was wrong, when said, is in detail.reason (pier's registry says it there)
    const reason = e?.detail && typeof e.detail === 'object' && typeof (e.detail as { reason?: unknown }).reason === 'string' ? (e.detail as { reason: string }).reason : undefined;
    if (e?.code) return new PierError(`${e.code}: ${reason ?? e.message ?? ''}${what ? ` (${what})` : ''}`.replace(/\s+/g, ' ').trim());
  } catch { /* not JSON */ }
  const code = res.status === 401 ? 'UNAUTHORIZED' : res.status === 403 ? 'DENIED' : res.status === 404 ? 'NOT_FOUND' : `HTTP ${res.status}`;
  return new PierError(`${code}: ${what}`);
}

export class RegistryClient {
  readonly transport: Transport;
  readonly host: string;

  constructor(host: string, opts: ClientOptions) {
    this.host = host;
    this.transport = new Transport(host, opts);
  }

  /** Close the connections to the registry. */
  close(): void {
    this.transport.close();
  }

  private scope(repo: string, push: boolean): string[] {
    return [`repository:${repo}:${push ? 'pull,push' : 'pull'}`];
  }

  /** GET /v2/: does the registry answer, and do the credentials work? */
  async ping(): Promise<void> {
    const res = await this.transport.send({ method: 'GET', url: '/v2/' });
    if (res.status !== 200) throw await registryError(res, `GET /v2/ answered ${res.status}`);
    await res.discard();
  }

  /** Every repository in the registry's catalog (`/v2/_catalog`, distribution's extension), following `Link` pages. */
  catalog(): Promise<string[]> {
    return this.listPaged('/v2/_catalog?n=1000', 'repositories', ['registry:catalog:*'], 'the catalog');
  }

  /** Every tag of a repository, following `Link` pages. */
  tags(repo: string): Promise<string[]> {
    return this.listPaged(`/v2/${repo}/tags/list?n=1000`, 'tags', this.scope(repo, false), `tags of ${repo}`);
  }

  private async listPaged(first: string, key: 'repositories' | 'tags', scopes: string[], what: string): Promise<string[]> {
    const out: string[] = [];
    const seen = new Set<string>();
    for (let url: string | undefined = first; url !== undefined;) {
      if (seen.has(url)) throw new PierError(`${what}: the registry's next-page link loops (${url})`);
      seen.add(url);
      const res = await this.transport.send({ method: 'GET', url, scopes });
      if (res.status !== 200) throw await registryError(res, what);
      let body: Record<string, unknown>;
      try { body = JSON.parse(await res.text()) as Record<string, unknown>; } catch { throw new PierError(`${what}: the registry answered no JSON`); }
      const items = body[key] ?? [];
      if (!Array.isArray(items) || items.some((t) => typeof t !== 'string')) throw new PierError(`${what}: "${key}" is not a list of names`);
      out.push(...(items as string[]));
      url = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''))?.[1];
    }
    return out;
  }

  async hasBlob(repo: string, digest: string, push = false): Promise<boolean> {
    const res = await this.transport.send({ method: 'HEAD', url: `/v2/${repo}/blobs/${digest}`, scopes: this.scope(repo, push), follow: true });
    await res.discard();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await registryError(res, `HEAD blob ${digest} answered ${res.status}`);
  }

  async getManifest(repo: string, reference: string): Promise<FetchedManifest> {
    const res = await this.transport.send({ method: 'GET', url: `/v2/${repo}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT }, scopes: this.scope(repo, false) });
    if (res.status !== 200) throw await registryError(res, `manifest ${repo}:${reference}`);
    const bytes = await res.buffer();
    const ct = String(res.headers['content-type'] ?? '').split(';')[0].trim();
    let mediaType = ct;
    try {
      const j = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
      if (typeof j.mediaType === 'string') mediaType = j.mediaType;
    } catch { throw new PierError(`manifest ${repo}:${reference} is not JSON`); }
    const digest = digestOf(bytes);
    if (reference.includes(':') && reference !== digest) throw new PierError(`DIGEST_INVALID: manifest ${repo}@${reference} has digest ${digest}`);
    const said = res.headers['docker-content-digest'];
    if (typeof said === 'string' && said.startsWith('sha256:') && said !== digest) {
      throw new PierError(`DIGEST_INVALID: manifest ${repo}:${reference} is said to be ${said} but its bytes are ${digest}`);
    }
    return { bytes, mediaType, digest };
  }

  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.transport.send({ method: 'PUT', url: `/v2/${repo}/manifests/${reference}`, headers: { 'content-type': mediaType }, body: bytes, scopes: this.scope(repo, true) });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await registryError(res, `manifest ${repo}:${reference}`);
    await res.discard();
    return digestOf(bytes);
  }

  /** The blob's bytes as a stream (the caller verifies them). */
  async getBlob(repo: string, digest: string): Promise<Readable> {
    const res = await this.transport.send({ method: 'GET', url: `/v2/${repo}/blobs/${digest}`, scopes: this.scope(repo, false), follow: true });
    if (res.status !== 200) throw await registryError(res, `blob ${digest}`);
    return res.stream;
  }

  /**
   * Mount `digest` from repository `from`: true when mounted; otherwise the upload location the
   * registry opened instead.
   */
  async mountBlob(repo: string, digest: string, from: string): Promise<{ mounted: true } | { mounted: false; location: string }> {
    const url = `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const res = await this.transport.send({ method: 'POST', url, scopes: [...this.scope(repo, true), `repository:${from}:pull`] });
    await res.discard();
    if (res.status === 201) return { mounted: true };
    if (res.status === 202 && res.headers.location) return { mounted: false, location: res.headers.location };
    throw await registryError(res, `mount ${digest} from ${from}`);
  }

  async startUpload(repo: string): Promise<string> {
    const res = await this.transport.send({ method: 'POST', url: `/v2/${repo}/blobs/uploads/`, scopes: this.scope(repo, true) });
    if (res.status !== 202 || !res.headers.location) throw await registryError(res, `start upload to ${repo}`);
    await res.discard();
    return res.headers.location;
  }

  private withDigest(location: string, digest: string): string {
    const u = this.transport.resolve(location);
    u.searchParams.set('digest', digest);
    return u.href;
  }

  /** PUT the whole blob to an upload location: a stream factory, or a local file (sent by sendfile where it can). */
  async putBlob(repo: string, location: string, digest: string, size: number, open: (() => Readable) | FileBody): Promise<void> {
    const res = await this.transport.send({ method: 'PUT', url: this.withDigest(location, digest), headers: { 'content-type': 'application/octet-stream' }, body: open, length: size, scopes: this.scope(repo, true) });
    if (res.status !== 201) throw await registryError(res, `upload ${digest}`);
    await res.discard();
  }

  /** Where an upload session stands: the next offset (from `Range: 0-<end>`) and its location. */
  async uploadStatus(repo: string, location: string): Promise<{ offset: number; location: string }> {
    const res = await this.transport.send({ method: 'GET', url: location, scopes: this.scope(repo, true) });
    await res.discard();
    if (res.status !== 204 && res.status !== 200) throw await registryError(res, `upload status`);
    return { offset: rangeEnd(res), location: res.headers.location ?? location };
  }

  /**
   * Upload in chunks of `chunkSize` bytes: PATCH each with its Content-Range; when a PATCH fails
   * (416, a dropped connection, a server error), ask the session where it stands and continue from
   * there, up to `retries` times. The final PUT carries the digest. `offset`: the session already
   * holds that many bytes (a session resumed from an earlier push).
   */
  async putBlobChunked(repo: string, location: string, digest: string, size: number, chunkSize: number,
    openRange: (start: number, end: number) => Readable, opts: { retries?: number; offset?: number; onChunk?: (done: number, location: string) => void } = {}): Promise<{ resumed: number }> {
    let offset = opts.offset ?? 0;
    let loc = location;
    let retries = opts.retries ?? 3;
    let resumed = 0;
    while (offset < size) {
      const end = Math.min(offset + chunkSize, size) - 1;
      let failure: PierError | undefined;
      try {
        const res = await this.transport.send({
          method: 'PATCH', url: loc, headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${end}` },
          body: () => openRange(offset, end), length: end - offset + 1, scopes: this.scope(repo, true),
        });
        if (res.status === 202) {
          await res.discard();
          loc = res.headers.location ?? loc;
          const got = res.headers.range ? rangeEnd(res) : end + 1;
          offset = got;
          opts.onChunk?.(offset, loc);
          continue;
        }
        failure = await registryError(res, `PATCH ${offset}-${end} answered ${res.status}`);
      } catch (err) {
        if (!(err instanceof PierError)) throw err;
        failure = err;
      }
      if (retries-- <= 0) throw failure;
      const st = await this.uploadStatus(repo, loc);
      loc = st.location;
      offset = st.offset;
      resumed++;
    }
    const res = await this.transport.send({ method: 'PUT', url: this.withDigest(loc, digest), scopes: this.scope(repo, true) });
    if (res.status !== 201) throw await registryError(res, `upload ${digest}`);
    await res.discard();
    return { resumed };
  }
}

/**
 * The next offset from a `Range: 0-<end>` header (inclusive end). distribution answers `0-0` for an
 * empty session, which a 1-byte session would also say; it is read as empty.
 */
export function rangeEnd(res: { headers: { range?: string | string[] } }): number {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(String(res.headers.range ?? ''));
  if (!m) return 0;
  const end = Number(m[1]);
  return end === 0 ? 0 : end + 1;
}
