/**
 * Blob bodies moved by the pierfs addon on plain-HTTP connections, off the event loop, in threads of
 * the addon's own:
 *
 * - **push** (`sendFileBody`): a request body that is a range of a local file goes out by
 *   sendfile(2) — no read into user space, no Buffer per chunk. Node still sends the headers and
 *   parses the answer; it is told the body ended (`end()` with no data) once the thread is done.
 * - **pull** (`takeResponseToFile`): the rest of a large response body goes straight from the socket
 *   into the content store's temp file, sha256-hashed in the same thread (`recvToFile`); the main
 *   thread only checks the digest and renames. `takeResponseBody` is the fallback for other digest
 *   algorithms: big Buffers (`recvInto`) that the store hashes and writes. Either way Node's parser
 *   still thinks it is in the middle of that body, so the connection is dropped afterwards (the
 *   agent opens a new one).
 *
 * Otherwise (TLS, no addon, a small or chunked body, Node's state not as expected) the bodies are
 * streamed through Node as before. `PIER_REGISTRY_NATIVE_IO=0` turns the addon paths off.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { createReadStream, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Socket } from 'node:net';
import { finished } from 'node:stream';
import { PierError } from '../../common/errors.ts';
import type { TransferHandle } from '../../common/fsx.ts';
import { nativeIo, nativeSha256, plainHandle, takeFromParser, type NativeTransfer, type ParserTake } from '../native.ts';

export interface FileBody {
  path: string;
  start: number;
  /** bytes from start */
  length: number;
}

export function isFileBody(b: unknown): b is FileBody {
  return typeof b === 'object' && b !== null && !Buffer.isBuffer(b) && typeof (b as FileBody).path === 'string';
}

/** Request bodies smaller than this are streamed. */
const SENDFILE_MIN = 256 << 10;
/** Response bodies from this size on are read by the addon. */
const RECV_MIN = 1 << 20;
/** Bytes per Buffer handed to the consumer of a response body read by the addon. */
const RECV_CHUNK = 4 << 20;
/** The peer moved nothing for this long: give up. */
const IDLE_TIMEOUT_MS = 5 * 60_000;
const READ_CHUNK = 1 << 20;


// ---- request bodies (push) ----

function stream(req: ClientRequest, body: FileBody): void {
  if (body.length === 0) { req.end(); return; }
  const s = createReadStream(body.path, { start: body.start, end: body.start + body.length - 1, highWaterMark: READ_CHUNK });
  s.on('error', (err) => req.destroy(err));
  s.pipe(req);
}

/** Send `body` as the request's body and end the request; failures destroy the request. */
export function sendFileBody(req: ClientRequest, body: FileBody): void {
  const nat = body.length >= SENDFILE_MIN ? nativeIo() : null;
  if (!nat) return stream(req, body);
  const go = (sock: Socket) => {
    if (sock.connecting) { sock.once('connect', () => go(sock)); return; }
    if (req.destroyed) return;
    req.flushHeaders();
    const h = plainHandle(sock);
    // the headers must be in the kernel before the body goes out behind Node's back
    if (!h || sock.writableLength !== 0 || req.socket !== sock) return stream(req, body);
    void viaSendfile(nat, req, h.fd, body);
  };
  if (req.socket) go(req.socket);
  else req.once('socket', go);
}

async function viaSendfile(nat: NativeTransfer, req: ClientRequest, sockFd: number, body: FileBody): Promise<void> {
  let fh;
  try {
    fh = await open(body.path, 'r');
  } catch (err) {
    req.destroy(err as Error);
    return;
  }
  try {
    if (req.destroyed) return;
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      let over = false;
      const handle = nat.sendfile(sockFd, fh.fd, body.start, body.length, IDLE_TIMEOUT_MS, (e) => { over = true; resolve(e); });
      // the connection closing under the transfer (the server answered early and closed) stops it
      finished(req, () => { if (!over) nat.transferCancel(handle); });
    });
    if (err) req.destroy(err);
    else req.end();
  } finally {
    await fh.close().catch(() => {});
  }
}

// ---- response bodies (pull) ----

export interface TakenBody {
  /** the body, in Buffers of up to RECV_CHUNK bytes (the next is being read while one is consumed) */
  chunks(): AsyncGenerator<Buffer>;
  /** stop reading and drop the connection (always call it, also after all chunks) */
  close(): void;
}

/** Take a large response body from Node's parser (see takeFromParser); errors on `res` are expected then. */
function take(res: IncomingMessage): ParserTake | undefined {
  const t = takeFromParser(res, RECV_MIN);
  if (t) res.on('error', () => { /* the connection is dropped on purpose at the end */ });
  return t;
}

const downloadError = (what: string, err: NodeJS.ErrnoException) =>
  new PierError(`${what}: ${err.code === 'ECANCELED' ? 'the download was stopped' : `reading the body failed: ${err.message}`}`, { cause: err });

/**
 * Take a large response body away from Node: its parser is stopped, the bytes it had read are
 * handed out first, the rest is read by the addon. Undefined when it cannot or need not be (read
 * `res` as a stream then). Call it right when the response arrives, before reading from it.
 */
export function takeResponseBody(res: IncomingMessage, what: string): TakenBody | undefined {
  const nat = nativeIo();
  const t = nat ? take(res) : undefined;
  if (!nat || !t) return undefined;
  const { head, fd, sock } = t;
  let pending: { handle: TransferHandle; done: Promise<Buffer> } | undefined;
  let closed = false;
  const fill = (n: number) => {
    const buf = Buffer.allocUnsafeSlow(n);
    let handle!: TransferHandle;
    const done = new Promise<Buffer>((resolve, reject) => {
      handle = nat.recvInto(fd, buf, 0, n, IDLE_TIMEOUT_MS, (err) => (err ? reject(downloadError(what, err)) : resolve(buf)));
    });
    done.catch(() => {});
    return { handle, done };
  };
  return {
    async *chunks() {
      for (const c of head) yield c;
      let left = t.rest;
      pending = left > 0 && !closed ? fill(Math.min(RECV_CHUNK, left)) : undefined;
      while (pending) {
        const buf = await pending.done;
        left -= buf.length;
        // read the next part while this one is hashed and written
        pending = left > 0 && !closed ? fill(Math.min(RECV_CHUNK, left)) : undefined;
        yield buf;
      }
    },
    close() {
      closed = true;
      if (pending) nat.transferCancel(pending.handle);
      sock.destroy(); // its parser is mid-body: it cannot carry another request
    },
  };
}

export interface FileDownload {
  /**
   * Read the whole body into `fd` (open for appending), sha256-hashing it in the addon's thread on
   * the way; `onBytes` hears how many bytes are in so far. Resolves with the digest and size.
   */
  toFile(fd: number, onBytes: (done: number) => void): Promise<{ digest: string; size: number }>;
  /** stop and drop the connection (always call it, also after toFile resolved) */
  close(): void;
}

/** Bytes per recvToFile call: each returns to JS for progress and cancellation. */
const FILE_STEP = 32 << 20;
/** Start writeback of a download every this many bytes, so the fsync before it goes live is short. */
const WRITEBACK_EVERY = 8 << 20;

/**
 * Like takeResponseBody, but the body goes from the socket into a file and through sha256 in the
 * addon's thread, never into JS: the main thread neither copies nor hashes it. Undefined when the
 * addon (with its sha256) is missing or the response cannot be taken.
 */
export function takeResponseToFile(res: IncomingMessage, what: string): FileDownload | undefined {
  const nat = nativeIo();
  const sha = nativeSha256();
  const t = nat && sha ? take(res) : undefined;
  if (!nat || !sha || !t) return undefined;
  let pending: TransferHandle | undefined;
  let closed = false;
  return {
    async toFile(fd, onBytes) {
      const state = sha.sha256New();
      let done = 0;
      for (const c of t.head) {
        sha.sha256Update(state, c);
        for (let off = 0; off < c.length;) off += writeSync(fd, c, off, c.length - off);
        done += c.length;
      }
      onBytes(done);
      for (let left = t.rest; left > 0;) {
        if (closed) throw downloadError(what, Object.assign(new Error('stopped'), { code: 'ECANCELED' }));
        const n = Math.min(FILE_STEP, left);
        await new Promise<void>((resolve, reject) => {
          pending = nat.recvToFile(t.fd, fd, n, state, WRITEBACK_EVERY, IDLE_TIMEOUT_MS, (err) => {
            pending = undefined;
            if (err) reject(downloadError(what, err));
            else resolve();
          });
        });
        left -= n;
        done += n;
        onBytes(done);
      }
      return { digest: `sha256:${sha.sha256Hex(state)}`, size: done };
    },
    close() {
      closed = true;
      if (pending) nat.transferCancel(pending);
      t.sock.destroy(); // its parser is mid-body: it cannot carry another request
    },
  };
}
