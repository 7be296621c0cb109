/**
 * Push a local image to a registry: for each blob HEAD (skip when present), else mount from another
 * repository of the same registry known to hold it, else upload (one PUT, or PATCH chunks with
 * resume when `chunkSize` is set and the blob is larger — also across pushes: a chunked session an
 * earlier, interrupted push left is picked up where it stands). Config and layers go in parallel; the
 * manifest goes last with its exact bytes and media type; an index's children before the index.
 */
import { createReadStream } from 'node:fs';
import { PierError } from '../../common/errors.ts';
import { ImageService, manifestKind, parseIndex, parseManifest, type Descriptor } from '../../image/index.ts';
import { RegistryClient, type ClientOptions } from './client.ts';
import { BlobSources } from './blob-sources.ts';
import { UploadSessions } from './upload-sessions.ts';
import { Progress } from './progress.ts';
import { mapLimit } from './limit.ts';
import type { RemoteReference } from './reference.ts';

export interface PushOptions extends ClientOptions {
  /** PATCH blobs larger than this in chunks of this many bytes (default: one PUT per blob) */
  chunkSize?: number;
  /** blobs in flight at once (default 4) */
  concurrency?: number;
  progress?: Progress;
}

export interface PushResult {
  /** digest of the manifest (or index) pushed under the tag */
  digest: string;
  mediaType: string;
  size: number;
  /** per blob: what happened */
  blobs: { digest: string; size: number; action: 'exists' | 'mounted' | 'pushed'; resumedAt?: number }[];
}

export class Pusher {
  readonly svc: ImageService;
  readonly dest: RemoteReference;
  readonly client: RegistryClient;
  private readonly opts: PushOptions;
  private readonly sources: BlobSources;
  private readonly sessions: UploadSessions;
  private readonly progress: Progress;
  private readonly blobs: PushResult['blobs'] = [];

  constructor(svc: ImageService, dest: RemoteReference, opts: PushOptions) {
    this.svc = svc;
    this.dest = dest;
    this.opts = opts;
    this.client = new RegistryClient(dest.host, opts);
    this.sources = new BlobSources(svc.root);
    this.sessions = new UploadSessions(svc.root);
    this.progress = opts.progress ?? new Progress({ quiet: true });
  }

  /** Push the local image `source` names. */
  async push(source: string): Promise<PushResult> {
    const names = this.svc.refsFor(source);
    const target = this.svc.refs.get(names[0]);
    if (!target) throw new PierError(`image ${JSON.stringify(source)} not found`);
    if (this.dest.digest !== undefined && this.dest.digest !== target.digest) {
      throw new PierError(`${source} has digest ${target.digest}, not ${this.dest.digest}`);
    }
    try {
      await this.pushManifest(target, this.dest.tag ?? target.digest, 0);
    } finally {
      this.sources.save();
      this.client.close();
    }
    return { digest: target.digest, mediaType: target.mediaType, size: target.size, blobs: this.blobs };
  }

  private async pushManifest(d: Descriptor, reference: string, depth: number): Promise<void> {
    if (depth > 8) throw new PierError(`image index nesting deeper than 8`);
    const bytes = await this.svc.content.readBytes(d.digest);
    const kind = manifestKind(bytes, d.mediaType, `manifest ${d.digest}`);
    if (kind === 'index') {
      const idx = parseIndex(bytes, d.mediaType, `index ${d.digest}`);
      for (const child of idx.manifests) {
        if (!this.svc.content.has(child.digest)) throw new PierError(`index ${d.digest}: child ${child.digest} is not in the local store`);
        await this.pushManifest(child, child.digest, depth + 1);
      }
    } else {
      const m = parseManifest(bytes, d.mediaType, `manifest ${d.digest}`);
      const blobs = [m.config, ...m.layers].filter((b) => !(b.urls?.length && !this.svc.content.has(b.digest)));
      const unique = [...new Map(blobs.map((b) => [b.digest, b])).values()];
      await mapLimit(unique, this.opts.concurrency ?? 4, (b) => this.pushBlob(b));
    }
    await this.client.putManifest(this.dest.repository, reference, bytes, d.mediaType);
  }

  private async pushBlob(b: Descriptor): Promise<void> {
    const { repository: repo, host } = this.dest;
    const record = (action: 'exists' | 'mounted' | 'pushed', status: string, resumedAt?: number) => {
      this.blobs.push({ digest: b.digest, size: b.size, action, ...(resumedAt !== undefined ? { resumedAt } : {}) });
      this.sources.add(host, repo, b.digest);
      this.progress.finish(b.digest, status, b.size);
    };
    if (await this.client.hasBlob(repo, b.digest, true)) {
      this.sessions.set(host, repo, b.digest, undefined);
      return record('exists', 'exists');
    }
    const path = this.svc.content.blobPath(b.digest);
    const chunk = this.opts.chunkSize;
    const chunked = chunk !== undefined && b.size > chunk;
    // a session an earlier push of this blob left unfinished: continue it where the registry says
    const resumed = chunked ? await this.resumable(b) : undefined;
    let location = resumed?.location;
    if (!location) {
      for (const from of this.sources.on(host, b.digest, repo)) {
        const r = await this.client.mountBlob(repo, b.digest, from);
        if (r.mounted) return record('mounted', `mounted from ${from}`);
        location = r.location;
        break;
      }
    }
    location ??= await this.client.startUpload(repo);
    this.progress.start(b.digest, b.size, 'pushing');
    if (chunked) {
      this.sessions.set(host, repo, b.digest, { location, size: b.size });
      if (resumed) this.progress.update(b.digest, resumed.offset);
      await this.client.putBlobChunked(repo, location, b.digest, b.size, chunk,
        (start, end) => createReadStream(path, { start, end, highWaterMark: 1 << 20 }),
        {
          offset: resumed?.offset,
          onChunk: (done, loc) => {
            this.progress.update(b.digest, done);
            // registries such as distribution put the session's state in the location: keep the newest
            if (loc !== location) this.sessions.set(host, repo, b.digest, { location: (location = loc), size: b.size });
          },
        });
      this.sessions.set(host, repo, b.digest, undefined);
    } else {
      await this.client.putBlob(repo, location, b.digest, b.size, { path, start: 0, length: b.size });
    }
    if (resumed) return record('pushed', `pushed (resumed at ${resumed.offset} of ${b.size} bytes)`, resumed.offset);
    record('pushed', 'pushed');
  }

  /** The saved session for this blob, if the registry still has it: its location and offset. */
  private async resumable(b: Descriptor): Promise<{ location: string; offset: number } | undefined> {
    const { repository: repo, host } = this.dest;
    const saved = this.sessions.get(host, repo, b.digest);
    if (!saved || saved.size !== b.size) return undefined;
    try {
      const st = await this.client.uploadStatus(repo, saved.location);
      if (st.offset > b.size) throw new PierError('the session holds more than the blob');
      return st;
    } catch (err) {
      if (!(err instanceof PierError)) throw err;
      this.sessions.set(host, repo, b.digest, undefined); // expired or unknown: start afresh
      return undefined;
    }
  }
}
