/**
 * Observability: one access-log line per request and Prometheus text-format metrics.
 *
 * Log line: `TIME REMOTE USER "METHOD PATH" STATUS BYTES DURATIONms` (ISO time, `-` for no user,
 * BYTES = response bytes written to the connection, headers included).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createWriteStream, type WriteStream } from 'node:fs';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** byte counters of a keep-alive connection at the end of its previous request */
const lastCount = new WeakMap<Socket, { read: number; written: number }>();
/** bytes moved on a connection behind Node's back (by the addon), which `bytesWritten`/`bytesRead` miss */
const sentAside = new WeakMap<Socket, number>();
const receivedAside = new WeakMap<Socket, number>();

/** Count bytes the addon wrote to `sock` directly. */
export function addSentBytes(sock: Socket, n: number): void {
  if (n > 0) sentAside.set(sock, (sentAside.get(sock) ?? 0) + n);
}

/** Count bytes the addon read from `sock` directly. */
export function addReceivedBytes(sock: Socket, n: number): void {
  if (n > 0) receivedAside.set(sock, (receivedAside.get(sock) ?? 0) + n);
}

export interface RequestRecord {
  method: string;
  path: string;
  status: number;
  remote: string;
  user?: string;
  bytesIn: number;
  bytesOut: number;
  seconds: number;
  /** what the request stored, for the stored-objects counters */
  stored?: 'blob' | 'manifest';
}

export class Metrics {
  private readonly requests = new Map<string, number>();
  private bytesIn = 0;
  private bytesOut = 0;
  private blobs = 0;
  private manifests = 0;
  private tokens = 0;
  private readonly hist = new Map<string, { buckets: number[]; sum: number; count: number }>();
  private inFlight = 0;

  begin(): void { this.inFlight++; }

  record(r: RequestRecord): void {
    this.inFlight--;
    const key = `${r.method}\0${r.status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    this.bytesIn += r.bytesIn;
    this.bytesOut += r.bytesOut;
    if (r.stored === 'blob') this.blobs++;
    if (r.stored === 'manifest') this.manifests++;
    let h = this.hist.get(r.method);
    if (!h) { h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }; this.hist.set(r.method, h); }
    BUCKETS.forEach((b, i) => { if (r.seconds <= b) h.buckets[i]++; });
    h.sum += r.seconds;
    h.count++;
  }

  tokenIssued(): void { this.tokens++; }

  /** Prometheus text exposition (version 0.0.4); `uploads` is the number of open upload sessions. */
  render(uploads: number): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    metric('pier_registry_requests_total', 'counter', 'HTTP requests answered, by method and status.',
      [...this.requests].sort().map(([k, v]) => { const [m, s] = k.split('\0'); return `pier_registry_requests_total{method="${m}",status="${s}"} ${v}`; }));
    metric('pier_registry_requests_in_flight', 'gauge', 'Requests being served.', [`pier_registry_requests_in_flight ${this.inFlight}`]);
    metric('pier_registry_received_bytes_total', 'counter', 'Bytes read from connections (headers included).', [`pier_registry_received_bytes_total ${this.bytesIn}`]);
    metric('pier_registry_sent_bytes_total', 'counter', 'Bytes written to connections (headers included).', [`pier_registry_sent_bytes_total ${this.bytesOut}`]);
    metric('pier_registry_uploads_in_progress', 'gauge', 'Open blob upload sessions in storage.', [`pier_registry_uploads_in_progress ${uploads}`]);
    metric('pier_registry_blobs_stored_total', 'counter', 'Blob uploads completed (201) since start.', [`pier_registry_blobs_stored_total ${this.blobs}`]);
    metric('pier_registry_manifests_stored_total', 'counter', 'Manifests stored (201) since start.', [`pier_registry_manifests_stored_total ${this.manifests}`]);
    metric('pier_registry_tokens_issued_total', 'counter', 'Tokens handed out by the built-in issuer.', [`pier_registry_tokens_issued_total ${this.tokens}`]);
    const lines: string[] = [];
    for (const [m, h] of [...this.hist].sort()) {
      BUCKETS.forEach((b, i) => lines.push(`pier_registry_request_duration_seconds_bucket{method="${m}",le="${b}"} ${h.buckets[i]}`));
      lines.push(`pier_registry_request_duration_seconds_bucket{method="${m}",le="+Inf"} ${h.count}`);
      lines.push(`pier_registry_request_duration_seconds_sum{method="${m}"} ${h.sum}`);
      lines.push(`pier_registry_request_duration_seconds_count{method="${m}"} ${h.count}`);
    }
    metric('pier_registry_request_duration_seconds', 'histogram', 'Time from request to the end of the response.', lines);
    return out.join('\n') + '\n';
  }
}

/** Where access-log lines go: a file (appended) or a function (stderr by default). */
export class AccessLog {
  private readonly stream: WriteStream | undefined;
  private readonly write: (line: string) => void;

  constructor(target: string | ((line: string) => void)) {
    if (typeof target === 'string') {
      const s = createWriteStream(target, { flags: 'a' });
      s.on('error', () => {});
      this.stream = s;
      this.write = (l) => { s.write(l); };
    } else {
      this.write = target;
    }
  }

  log(r: RequestRecord): void {
    this.write(`${new Date().toISOString()} ${r.remote} ${r.user ?? '-'} "${r.method} ${r.path}" ${r.status} ${r.bytesOut} ${(r.seconds * 1000).toFixed(1)}ms\n`);
  }

  close(): Promise<void> {
    const s = this.stream;
    return s ? new Promise((r) => s.end(() => r())) : Promise.resolve();
  }
}

/**
 * Watch one request: when its response is done (or the connection drops), hand `done` the record.
 * `user` and `stored` are read from `ctx` at that moment, so the handler can fill them in.
 */
export function watch(req: IncomingMessage, res: ServerResponse, ctx: { user?: string; stored?: 'blob' | 'manifest' }, done: (r: RequestRecord) => void): void {
  const start = process.hrtime.bigint();
  const sock = req.socket;
  let finished = false;
  const end = () => {
    if (finished) return;
    finished = true;
    const prev = lastCount.get(sock) ?? { read: 0, written: 0 };
    const now = { read: sock.bytesRead + (receivedAside.get(sock) ?? 0), written: sock.bytesWritten + (sentAside.get(sock) ?? 0) };
    lastCount.set(sock, now);
    const path = (req.url ?? '/').split('?')[0];
    done({
      method: req.method ?? '-', path, status: res.statusCode, remote: sock.remoteAddress ?? '-', user: ctx.user,
      bytesIn: Math.max(0, now.read - prev.read), bytesOut: Math.max(0, now.written - prev.written),
      seconds: Number(process.hrtime.bigint() - start) / 1e9, stored: res.statusCode === 201 ? ctx.stored : undefined,
    });
  };
  res.once('finish', end);
  res.once('close', end);
}

export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}
