/**
 * Pull an image from a registry into the local store: GET the manifest (OCI and Docker types
 * accepted), pick this host's platform (or the one asked for) from an index, or keep the index
 * whole; fetch configs and layers in parallel straight into the ContentStore with their expected
 * digest and size (it verifies), skip blobs already present, then tag `host/repository:tag`
 * locally (pulled by digest alone: the name is `host/repository@digest`, naming the pulled
 * manifest or index).
 */
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import { PierError } from '../../common/errors.ts';
import { ImageService, formatPlatform, manifestKind, parseConfig, parseIndex, parseManifest, pickPlatform, platformMatches, platformOf, platformsOf, type Descriptor, type Platform, type Lease } from '../../image/index.ts';
import { RegistryClient, type ClientOptions } from './client.ts';
import { BlobSources } from './blob-sources.ts';
import { Progress } from './progress.ts';
import { mapLimit } from './limit.ts';
import { takeResponseBody, takeResponseToFile } from './native-io.ts';
import { formatRemoteReference, type RemoteReference } from './reference.ts';

export interface PullOptions extends ClientOptions {
  concurrency?: number;
  progress?: Progress;
  /** the platform to take from an index (default: the store's, this host's); a lone manifest must be of it */
  platform?: Platform;
  /** keep an index whole: every platform's manifest and blobs, the local name on the index */
  allPlatforms?: boolean;
}

export interface PullResult {
  /** the local name it is tagged under */
  ref: string;
  /** digest of what the local name names: the platform's manifest when a tag names an index (the index with allPlatforms); the digest itself when pulled by digest */
  digest: string;
  blobs: { digest: string; size: number; action: 'exists' | 'pulled' }[];
}

type Fetched = Awaited<ReturnType<RegistryClient['getManifest']>>;

const MAX_INDEX_DEPTH = 8;

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

  private kind(m: Fetched): 'index' | 'manifest' {
    return manifestKind(m.bytes, m.mediaType, `manifest ${m.digest}`);
  }

  /** Every image manifest under an index (nested indexes followed), and the indexes on the way. */
  private async wholeTree(top: Fetched): Promise<{ manifests: Fetched[]; indexes: Fetched[] }> {
    const manifests: Fetched[] = [];
    const indexes: Fetched[] = [];
    const visit = async (m: Fetched, depth: number): Promise<void> => {
      if (this.kind(m) === 'manifest') { manifests.push(m); return; }
      if (depth >= MAX_INDEX_DEPTH) throw new PierError(`image index nesting deeper than ${MAX_INDEX_DEPTH}`);
      indexes.push(m);
      const idx = parseIndex(m.bytes, m.mediaType, `index ${m.digest}`);
      const children = await mapLimit(idx.manifests, this.opts.concurrency ?? 4, (c) => this.client.getManifest(this.src.repository, c.digest));
      for (const c of children) await visit(c, depth + 1);
    };
    await visit(top, 0);
    return { manifests, indexes };
  }

  /** The wanted platform's manifest under an index, and the indexes on the way to it. */
  private async onePlatform(top: Fetched, want: Platform): Promise<{ manifest: Fetched; indexes: Fetched[] }> {
    const indexes: Fetched[] = [];
    let m = top;
    while (this.kind(m) === 'index') {
      if (indexes.length >= MAX_INDEX_DEPTH) throw new PierError(`image index nesting deeper than ${MAX_INDEX_DEPTH}`);
      indexes.push(m);
      const idx = parseIndex(m.bytes, m.mediaType, `index ${m.digest}`);
      const child = pickPlatform(idx.manifests, want);
      if (!child) throw new PierError(`${formatRemoteReference(this.src)} has no manifest for ${formatPlatform(want)} (it has ${platformsOf(idx.manifests)})`);
      m = await this.client.getManifest(this.src.repository, child.digest);
    }
    return { manifest: m, indexes };
  }

  private async pullImage(): Promise<PullResult> {
    const { repository: repo, tag, digest } = this.src;
    if (tag === undefined && digest === undefined) throw new PierError(`${formatRemoteReference(this.src)}: give a tag or a digest`);
    const top = await this.client.getManifest(repo, (digest ?? tag)!);
    const want = this.opts.platform ?? this.svc.platform;
    // What to fetch, and what the local name points at: with allPlatforms the index itself; by
    // digest alone what that digest names (an index is kept, so the name resolves through it to
    // this platform's image); by tag the platform's manifest.
    let manifests: Fetched[];
    let indexes: Fetched[];
    let named: Fetched;
    if (this.opts.allPlatforms) {
      ({ manifests, indexes } = await this.wholeTree(top));
      named = top;
    } else {
      const one = await this.onePlatform(top, want);
      manifests = [one.manifest];
      indexes = tag === undefined ? one.indexes : [];
      named = tag === undefined ? top : one.manifest;
    }
    const parsed = manifests.map((m) => parseManifest(m.bytes, m.mediaType, `manifest ${m.digest}`));
    const content = this.svc.content;
    content.init();
    const lease = content.newLease();
    const blobs: PullResult['blobs'] = [];
    const sources = new BlobSources(this.svc.root);
    const handled = new Set<string>();
    const fetchAll = (list: Descriptor[]) => mapLimit(list.filter((b) => !handled.has(b.digest)), this.opts.concurrency ?? 4, async (b) => {
      handled.add(b.digest);
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
    try {
      if (this.opts.platform && top === manifests[0]) {
        // A lone manifest asked for by platform: its config says which it is; check before the layers.
        const config = parsed[0].config;
        await fetchAll([config]);
        const c = parseConfig(await content.readBytes(config.digest), parsed[0], `config ${config.digest}`);
        const got = platformOf(c);
        if (!platformMatches(got, want)) throw new PierError(`${formatRemoteReference(this.src)} is ${formatPlatform(got)}, not ${formatPlatform(want)}`);
      }
      const all = parsed.flatMap((m) => [m.config, ...m.layers]).filter((b) => !b.urls?.length);
      await fetchAll([...new Map(all.map((b) => [b.digest, b])).values()]);
      // manifests before the indexes that name them, so nothing is ever named before it is whole
      for (const m of [...manifests, ...indexes.reverse()]) {
        lease.add(m.digest);
        await content.write(m.bytes, { digest: m.digest, size: m.bytes.length }, lease);
      }
      const ref = tag !== undefined ? `${this.src.host}/${repo}:${tag}` : `${this.src.host}/${repo}@${top.digest}`;
      const descriptor: Descriptor = { mediaType: named.mediaType, digest: named.digest, size: named.bytes.length };
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
