/**
 * src/cluster/client: the cluster's own API client — REST verbs on one resource, and the
 * `ListWatch` the controller framework's informers take (controller/types.ts). Plain HTTP to the
 * API server for now (TLS and credentials come with `pier cluster up`). Errors are the server's
 * `Status`, thrown as ApiStatusError (code, reason), so callers branch on 404/409/410 as client-go
 * callers do.
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import type { KObject, ListOptions, ListResult, ListWatch, WatchEvent, WatchOptions } from '../controller/index.ts';

export class ApiStatusError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string, message: string) {
    super(message);
    this.name = 'ApiStatusError';
    this.code = code;
    this.reason = reason;
  }
}

/** Longest answer the client reads into memory (the server's own body limit is 3 MiB; lists are bigger). */
const MAX_ANSWER = 256 * 1024 * 1024;

export class KubeClient {
  readonly base: URL;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });

  constructor(server: string) {
    this.base = new URL(server);
  }

  close(): void {
    this.agent.destroy();
  }

  private open(method: string, path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(new URL(path, this.base), {
        method, agent: this.agent, ...(signal ? { signal } : {}),
        headers: { accept: 'application/json', ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}), ...headers },
      }, resolve);
      req.on('error', reject);
      req.end(data);
    });
  }

  /** One request; the JSON answer, or the Status as an ApiStatusError. */
  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await this.open(method, path, body, headers);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_ANSWER) { res.destroy(); throw new Error(`${method} ${path}: answer over ${MAX_ANSWER} bytes`); }
      chunks.push(c);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let json: unknown;
    try { json = text ? JSON.parse(text) : undefined; } catch { throw new Error(`${method} ${path}: ${res.statusCode}: not JSON: ${text.slice(0, 200)}`); }
    if ((res.statusCode ?? 500) >= 400) {
      const s = json as { code?: number; reason?: string; message?: string } | undefined;
      throw new ApiStatusError(s?.code ?? res.statusCode ?? 500, s?.reason ?? 'Unknown', s?.message ?? `${method} ${path}: ${res.statusCode}`);
    }
    return json as T;
  }

  /** Chunked `{type, object}` lines of a watch, until the server ends it or the signal aborts. */
  async *stream<T>(path: string, signal: AbortSignal): AsyncGenerator<T> {
    let res: IncomingMessage;
    try {
      res = await this.open('GET', path, undefined, {}, signal);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    if ((res.statusCode ?? 500) >= 400) {
      let text = '';
      for await (const c of res as AsyncIterable<Buffer>) text += c;
      let s: { code?: number; reason?: string; message?: string } = {};
      try { s = JSON.parse(text); } catch { /* not a Status */ }
      throw new ApiStatusError(s.code ?? res.statusCode ?? 500, s.reason ?? 'Unknown', s.message ?? text.slice(0, 200));
    }
    let buf = '';
    try {
      for await (const c of res as AsyncIterable<Buffer>) {
        buf += c.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim()) yield JSON.parse(line) as T;
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  }

  resource<T extends KObject = KObject>(r: { group?: string; version: string; resource: string; namespace?: string }): ResourceClient<T> {
    return new ResourceClient<T>(this, r);
  }
}

/** The paths of one resource (a namespace's, or all of them). */
export class ResourceClient<T extends KObject = KObject> {
  private readonly client: KubeClient;
  private readonly root: string;
  constructor(client: KubeClient, r: { group?: string; version: string; resource: string; namespace?: string }) {
    this.client = client;
    const gv = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
    this.root = `${gv}${r.namespace ? `/namespaces/${encodeURIComponent(r.namespace)}` : ''}/${r.resource}`;
  }

  private q(params: Record<string, string | undefined>): string {
    const s = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined)).toString();
    return s ? `?${s}` : '';
  }

  get(name: string): Promise<T> { return this.client.request('GET', `${this.root}/${encodeURIComponent(name)}`); }
  create(obj: T): Promise<T> { return this.client.request('POST', this.root, obj); }
  update(obj: T): Promise<T> { return this.client.request('PUT', `${this.root}/${encodeURIComponent(obj.metadata.name)}`, obj); }
  patch(name: string, patch: unknown, type: 'merge' | 'strategic' | 'json' = 'merge'): Promise<T> {
    const ct = { merge: 'application/merge-patch+json', strategic: 'application/strategic-merge-patch+json', json: 'application/json-patch+json' }[type];
    return this.client.request('PATCH', `${this.root}/${encodeURIComponent(name)}`, patch, { 'content-type': ct });
  }
  delete(name: string): Promise<T> { return this.client.request('DELETE', `${this.root}/${encodeURIComponent(name)}`); }

  async list(opts: ListOptions & { limit?: number; continue?: string } = {}): Promise<{ items: T[]; metadata: { resourceVersion: string; continue?: string } }> {
    return this.client.request('GET', `${this.root}${this.q({ labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit: opts.limit ? String(opts.limit) : undefined, continue: opts.continue })}`);
  }

  watch(opts: WatchOptions): AsyncIterable<WatchEvent<T>> {
    return this.client.stream<WatchEvent<T>>(`${this.root}${this.q({ watch: '1', allowWatchBookmarks: 'true', resourceVersion: opts.resourceVersion, labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector })}`, opts.signal);
  }

  /** What an Informer takes: every page of the list (500 at a time), then the watch. */
  listWatch(): ListWatch<T> {
    return {
      list: async (opts): Promise<ListResult<T>> => {
        const items: T[] = [];
        let cont: string | undefined;
        let rv = '';
        do {
          const page = await this.list({ ...opts, limit: 500, ...(cont ? { continue: cont } : {}) });
          items.push(...page.items);
          rv ||= page.metadata.resourceVersion;
          cont = page.metadata.continue;
        } while (cont);
        return { items, resourceVersion: rv };
      },
      watch: (opts) => this.watch(opts),
    };
  }
}
