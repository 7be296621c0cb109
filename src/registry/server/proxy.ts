/**
 * Pull-through cache (distribution's proxy mode): a registry that serves another one's images and
 * keeps what it served. A manifest asked for by tag is fetched from upstream each time (so a moved
 * tag is followed) and stored; when upstream cannot be reached, the cached one is served. Manifests
 * by digest and blobs come from the cache, else from upstream (verified by the same upload path a
 * push takes, one fetch per blob however many clients ask). Pushes and deletes are refused.
 */
import { PierError, messageOf } from '../../common/errors.ts';
import { RegistryClient, type Credentials } from '../client/index.ts';
import { RegistryError } from './errors.ts';
import type { RegistryStore } from './store.ts';

export interface ProxyOptions {
  /** the upstream registry: `https://host[:port]` or `http://…` */
  remote: string;
  /** upstream login (basic, or for its token server) */
  credentials?: Credentials;
}

/** Upstream said the thing does not exist (as opposed to: could not be asked). */
const UPSTREAM_NOT_FOUND = /^(MANIFEST_UNKNOWN|NAME_UNKNOWN|BLOB_UNKNOWN|NOT_FOUND)\b/;

export class PullThrough {
  readonly remote: URL;
  private readonly client: RegistryClient;
  private readonly blobFetches = new Map<string, Promise<void>>();

  constructor(opts: ProxyOptions) {
    let url: URL;
    try { url = new URL(opts.remote); } catch { throw new PierError(`registry: --proxy-remote ${JSON.stringify(opts.remote)} is not a URL`); }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname.replace(/\/+$/, '') !== '' || url.username || url.search) {
      throw new PierError(`registry: --proxy-remote must be http(s)://HOST[:PORT], not ${JSON.stringify(opts.remote)}`);
    }
    this.remote = url;
    this.client = new RegistryClient(url.host, { plainHttp: url.protocol === 'http:', ...(opts.credentials ? { credentials: opts.credentials } : {}) });
  }

  close(): void {
    this.client.close();
  }

  refuse(method: string): RegistryError {
    return new RegistryError('UNSUPPORTED', 405, { message: `${method}: this registry is a pull-through cache of ${this.remote.origin} and takes no pushes or deletes` });
  }

  private upstreamError(what: string, err: unknown): RegistryError {
    const msg = messageOf(err).replace(/ \([^()]*\)$/, ''); // (the client's own "(what)" suffix)
    if (UPSTREAM_NOT_FOUND.test(msg)) return new RegistryError(msg.startsWith('BLOB') ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', 404, { message: `${this.remote.origin} has no ${what}` });
    return new RegistryError('UNAVAILABLE', 502, { message: `upstream ${this.remote.origin} could not serve ${what}: ${msg}` });
  }

  /** Make the manifest `ref` of `name` current in the store (see the module comment). */
  async manifest(store: RegistryStore, name: string, ref: string): Promise<void> {
    const byDigest = ref.includes(':');
    if (byDigest && await store.resolveManifest(name, ref)) return;
    let fetched;
    try {
      fetched = await this.client.getManifest(name, ref);
    } catch (err) {
      const e = this.upstreamError(`manifest ${name}:${ref}`, err);
      if (e.status === 502 && await store.resolveManifest(name, ref)) return; // upstream down: the cache answers
      throw e;
    }
    const have = await store.resolveManifest(name, ref);
    if (have?.digest === fetched.digest) return;
    await store.putManifest(name, ref, fetched.mediaType, fetched.bytes, [], { cached: true });
  }

  /** Make the blob `digest` of `name` present and linked in the store. */
  async blob(store: RegistryStore, name: string, digest: string): Promise<void> {
    if (await store.blobStat(name, digest) !== undefined) return;
    const key = `${name}@${digest}`;
    let p = this.blobFetches.get(key);
    if (!p) {
      p = this.fetchBlob(store, name, digest).finally(() => this.blobFetches.delete(key));
      this.blobFetches.set(key, p);
    }
    await p;
  }

  private async fetchBlob(store: RegistryStore, name: string, digest: string): Promise<void> {
    try {
      if (await store.poolStat(digest) !== undefined) {
        // the bytes are here for another repository: link them once upstream says this one has them
        if (!(await this.client.hasBlob(name, digest))) throw new PierError(`BLOB_UNKNOWN: ${name} has no ${digest}`);
        await store.linkBlob(name, digest);
        return;
      }
      const body = await this.client.getBlob(name, digest);
      const id = await store.createUpload(name);
      try {
        const st = await store.getUpload(name, id);
        await store.appendUpload(id, st, body, undefined, { save: false });
        await store.commitUpload(name, id, digest);
      } catch (err) {
        body.destroy();
        await store.deleteUpload(id).catch(() => {});
        throw err;
      }
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw this.upstreamError(`blob ${digest}`, err);
    }
  }
}
