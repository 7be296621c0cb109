/**
 * Pull an image from a registry into the local store: GET the manifest (OCI and Docker types
 * accepted), pick this host's platform from an index, fetch config and layers in parallel straight
 * into the ContentStore with their expected digest and size (it verifies), skip blobs already
 * present, then tag `host/repository:tag` locally (pulled by digest alone: the name is
 * `host/repository@digest`, naming the pulled manifest or index).
 */
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { PierError } from '../../common/errors.ts';
import { ImageService, manifestKind, parseIndex, parseManifest, type Descriptor, type Platform, type Lease } from '../../image/index.ts';
import { RegistryClient, type ClientOptions } from './client.ts';
import { BlobSources } from './blob-sources.ts';
import { Progress } from './progress.ts';
import { mapLimit } from './limit.ts';
import { takeResponseBody, takeResponseToFile } from './native-io.ts';
import { formatRemoteReference, type RemoteReference } from './reference.ts';

export interface PullOptions extends ClientOptions {
  concurrency?: number;
  progress?: Progress;
}

export interface PullResult {
  /** the local name it is tagged under */
  ref: string;
  /** digest of what the local name names: the platform's manifest when a tag names an index; the digest itself when pulled by digest */
  digest: string;
  blobs: { digest: string; size: number; action: 'exists' | 'pulled' }[];
}

function platformMatches(p: Platform | undefined, want: Platform): boolean {
  if (!p || p.os !== want.os || p.architecture !== want.architecture) return false;
  return !want.variant || !p.variant || p.variant === want.variant;
}

export class Puller {
  readonly svc: ImageService;
  readonly src: RemoteReference;
  readonly client: RegistryClient;
  private readonly opts: PullOptions;
  private readonly progress: Progress;

  constructor(svc: ImageService, src: RemoteReference, opts: PullOptions) {
    this.svc = svc;
    this.src = src;
    this.opts = opts;
    this.client = new RegistryClient(src.host, opts);
    this.progress = opts.progress ?? new Progress({ quiet: true });
  }

  async pull(): Promise<PullResult> {
    try {
      return await this.pullImage();
    } finally {
      this.client.close();
    }
  }

  private async pullImage(): Promise<PullResult> {
    const { repository: repo, tag, digest } = this.src;
    if (tag === undefined && digest === undefined) throw new PierError(`${formatRemoteReference(this.src)}: give a tag or a digest`);
    let m = await this.client.getManifest(repo, (digest ?? tag)!);
    // pulled by digest alone, the local name is `host/repo@digest` and names what that digest names
    // (an index is kept too, so the name resolves to this platform's image through it)
    const top = m;
    for (let depth = 0; manifestKind(m.bytes, m.mediaType, `manifest ${m.digest}`) === 'index'; depth++) {
      if (depth >= 8) throw new PierError(`image index nesting deeper than 8`);
      const idx = parseIndex(m.bytes, m.mediaType, `index ${m.digest}`);
      const want = this.svc.platform;
      const child = idx.manifests.find((c) => platformMatches(c.platform, want)) ??
        (idx.manifests.length === 1 && !idx.manifests[0].platform ? idx.manifests[0] : undefined);
      if (!child) throw new PierError(`${formatRemoteReference(this.src)} has no manifest for ${want.os}/${want.architecture}`);
      m = await this.client.getManifest(repo, child.digest);
    }
    const manifest = parseManifest(m.bytes, m.mediaType, `manifest ${m.digest}`);
    const content = this.svc.content;
    content.init();
    const lease = content.newLease();
    const blobs: PullResult['blobs'] = [];
    const sources = new BlobSources(this.svc.root);
    try {
      const all = [manifest.config, ...manifest.layers].filter((b) => !b.urls?.length);
      const unique = [...new Map(all.map((b) => [b.digest, b])).values()];
      await mapLimit(unique, this.opts.concurrency ?? 4, async (b) => {
        lease.add(b.digest);
        sources.add(this.src.host, repo, b.digest);
        if (content.has(b.digest)) {
          blobs.push({ digest: b.digest, size: b.size, action: 'exists' });
          this.progress.finish(b.digest, 'exists', b.size);
          return;
        }
        await this.fetchBlob(b, lease);
        blobs.push({ digest: b.digest, size: b.size, action: 'pulled' });
        this.progress.finish(b.digest, 'pulled', b.size);
      });
      lease.add(m.digest);
      await content.write(m.bytes, { digest: m.digest, size: m.bytes.length }, lease);
      let ref: string;
      let descriptor: Descriptor;
      if (tag !== undefined) {
        ref = `${this.src.host}/${repo}:${tag}`;
        descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
      } else {
        if (top !== m) await content.write(top.bytes, { digest: top.digest, size: top.bytes.length }, lease);
        ref = `${this.src.host}/${repo}@${top.digest}`;
        descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
      }
      await this.svc.refs.set(ref, descriptor);
      return { ref, digest: descriptor.digest, blobs };
    } finally {
      lease.release();
      sources.save();
    }
  }

  /** Download a blob straight into the content store, which verifies it before it goes live. */
  private async fetchBlob(b: Descriptor, lease: Lease): Promise<void> {
    const stream = await this.client.getBlob(this.src.repository, b.digest);
    this.progress.start(b.digest, b.size, 'pulling');
    const fail = (err: unknown) => err instanceof PierError ? new PierError(`blob ${b.digest}: ${err.message}`) : err;
    // A large body on a plain connection goes socket → file in the addon's thread, hashed there
    // (native-io.ts): the main thread never touches the bytes.
    // (only when the length is the declared one: the stream path stops an oversized body early)
    const sameLength = (stream as IncomingMessage).headers['content-length'] === String(b.size);
    const direct = sameLength && b.digest.startsWith('sha256:') ? takeResponseToFile(stream as IncomingMessage, `blob ${b.digest}`) : undefined;
    if (direct) {
      const ingest = await this.svc.content.ingest({ digest: b.digest, size: b.size }, lease).catch((err: unknown) => { direct.close(); throw err; });
      try {
        const got = await direct.toFile(ingest.fd, (n) => this.progress.update(b.digest, n));
        await ingest.commit(got.digest, got.size);
      } catch (err) {
        await ingest.abort();
        throw fail(err);
      } finally {
        direct.close();
      }
      return;
    }
    // else in big Buffers read by the addon when it can, or as a Node stream; the store hashes
    const taken = takeResponseBody(stream as IncomingMessage, `blob ${b.digest}`);
    let done = 0;
    const progress = (c: Buffer) => { done += c.length; this.progress.update(b.digest, done); };
    const source = taken
      ? (async function* () { for await (const c of taken.chunks()) { progress(c); yield c; } })()
      : stream.pipe(new Transform({ transform: (c: Buffer, _enc, cb) => { progress(c); cb(null, c); } }));
    if (!taken) stream.on('error', (err) => (source as Transform).destroy(new PierError(`reading the body failed: ${err.message}`, { cause: err })));
    try {
      await this.svc.content.write(source, { digest: b.digest, size: b.size }, lease);
    } catch (err) {
      stream.destroy();
      throw fail(err);
    } finally {
      taken?.close();
    }
  }
}
