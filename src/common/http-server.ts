/**
 * Guard rails every pier network server shares (engine API, registry, and the API servers to come):
 * header, idle and keep-alive timeouts; body limits; a request target that is parsed or refused with
 * 400; and one top-level error path, so a request can end in an answer or a closed socket but never
 * in an exception that takes the process down.
 *
 * Why each default: a client that never finishes its headers holds a socket and a parser (the
 * slowloris of CVE-2007-6750 against Apache; CVE-2018-12122 gave Node its headersTimeout). Node derives headersTimeout from requestTimeout, so `requestTimeout: 0` — which
 * servers of long bodies need — silently turns the header timeout off too; it is set here on its own.
 * An idle socket (no byte either way) is closed; a body that flows, or a stream a handler marks
 * long-lived, is not timed.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { PierError, messageOf } from './errors.ts';

export interface ServerLimits {
  /** Time a client has to send the request line and headers. */
  headersTimeoutMs: number;
  /** A socket with no traffic either way for this long is closed (streams may opt out: longLived). */
  idleTimeoutMs: number;
  /** Whole-request deadline; 0 for servers whose bodies may take long (uploads). */
  requestTimeoutMs: number;
  /** How long a keep-alive connection waits for its next request. */
  keepAliveTimeoutMs: number;
  /** Request-line plus header bytes. */
  maxHeaderBytes: number;
  /** Headers per request. */
  maxHeadersCount: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  headersTimeoutMs: 20_000,
  idleTimeoutMs: 120_000,
  requestTimeoutMs: 0,
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 16 * 1024,
  maxHeadersCount: 100,
};

/** The server options that must be given at construction (node:http reads them only there). */
export function serverOptions(limits: Partial<ServerLimits> = {}): { requestTimeout: number; headersTimeout: number; maxHeaderSize: number; keepAliveTimeout: number; connectionsCheckingInterval: number } {
  const l = { ...DEFAULT_LIMITS, ...limits };
  return {
    requestTimeout: l.requestTimeoutMs,
    headersTimeout: l.headersTimeoutMs,
    maxHeaderSize: l.maxHeaderBytes,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    // How often expired headers/requests are looked for: a fraction of the header timeout, so a
    // short one (tests) is honoured closely, but never busier than every 100 ms.
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(l.headersTimeoutMs / 4))),
  };
}

/**
 * Apply the limits that node:http lets one set after construction, and make sure nothing a client
 * does reaches the process as an uncaught error. Call once, right after createServer.
 */
export function guardServer<S extends Server | HttpsServer>(server: S, limits: Partial<ServerLimits> = {}): S {
  const l = { ...DEFAULT_LIMITS, ...limits };
  server.headersTimeout = l.headersTimeoutMs;
  server.requestTimeout = l.requestTimeoutMs;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.maxHeadersCount = l.maxHeadersCount;
  // Socket inactivity: node emits 'timeout' on the server; with a listener there the socket is not
  // destroyed automatically, so do it here.
  server.setTimeout(l.idleTimeoutMs, (socket) => socket.destroy());
  // A parse error (bad request line, oversized headers): answer 400/431 when the socket can still
  // take it, then close. node's default does the same; having our own listener means a socket
  // error can never become an unhandled 'error' event.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && !(socket as { _httpMessage?: unknown })._httpMessage) {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  });
  return server;
}

/** An error with the HTTP status it answers with. */
export class HttpError extends PierError {
  readonly status: number;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HttpError';
    this.status = status;
  }
}

/**
 * The request target as a URL, or a 400 naming it. `new URL` throws on targets such as `http://[`,
 * and percent-decoding throws on `%`; both are the client's mistake, not the server's.
 */
export function requestUrl(req: IncomingMessage, base = 'http://localhost'): URL {
  const target = req.url ?? '/';
  try {
    const url = new URL(target, base);
    // Decode once here so a stray % is refused at the door, not deep in a handler.
    decodeURIComponent(url.pathname);
    return url;
  } catch {
    throw new HttpError(400, `malformed request target ${JSON.stringify(target.slice(0, 200))}`);
  }
}

/** decodeURIComponent that answers 400 instead of throwing URIError. */
export function decodePart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in ${JSON.stringify(s.slice(0, 200))}`);
  }
}

/** Read a whole body of at most `limit` bytes; a longer one is refused with 413 as soon as it is seen. */
export async function readBody(req: IncomingMessage, limit: number, what = 'request body'): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    req.resume();
    throw new HttpError(413, `${what} is ${declared} bytes; the limit is ${limit}`);
  }
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > limit) {
      req.resume();
      throw new HttpError(413, `${what} exceeds the limit of ${limit} bytes`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** A JSON body (undefined when empty), limited in size; bad JSON is a 400. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const buf = await readBody(req, limit);
  if (buf.length === 0) return undefined;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${messageOf(err)}`);
  }
}

/**
 * A response that may stay quiet for a long time on purpose (`logs -f`, an attached container, a
 * watch): lift the idle timeout of its socket. The header timeout has done its job by now.
 */
export function longLived(res: ServerResponse): void {
  const socket = res.socket;
  if (!socket) return;
  socket.setTimeout(0);
  // On a keep-alive connection the next request is timed again (node sets the idle timeout per
  // connection, not per request).
  const idle = (socket as { server?: { timeout?: number } }).server?.timeout ?? 0;
  if (idle > 0) res.once('finish', () => { if (!socket.destroyed) socket.setTimeout(idle); });
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

/**
 * Run `handler` so that whatever it throws or rejects with goes to `onError`; if onError itself
 * fails, answer a bare 500 (or close the socket when headers are out). This is the top-level error
 * path: no request can crash the process.
 */
export function guarded(handler: RequestHandler, onError: (err: unknown, req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  const last = (req: IncomingMessage, res: ServerResponse, err: unknown) => {
    try {
      onError(err, req, res);
    } catch {
      try {
        if (!res.headersSent) { res.writeHead(500, { 'content-length': 0, connection: 'close' }); res.end(); } else res.destroy();
      } catch { res.destroy(); }
    }
  };
  return (req, res) => {
    // A client that resets mid-request must not surface as an unhandled 'error'.
    req.on('error', () => {});
    res.on('error', () => {});
    try {
      const out = handler(req, res);
      if (out && typeof (out as Promise<unknown>).then === 'function') (out as Promise<unknown>).then(undefined, (err: unknown) => last(req, res, err));
    } catch (err) {
      last(req, res, err);
    }
  };
}
