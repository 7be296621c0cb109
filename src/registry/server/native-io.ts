/**
 * Blob bodies moved by the pierfs addon, off the event loop, on plain-HTTP connections:
 *
 * - **GET**: sendfile(2) — the kernel copies page cache → socket, with no pass through user space
 *   and no event-loop turn per chunk. Node sends the headers and is told the response ended
 *   (`res.end()` with no body) only after the addon's thread is done, so nothing else is written on
 *   the connection meanwhile. Over TLS, or when the headers could not be flushed first, the body
 *   goes through a read stream instead.
 * - **PUT / PATCH / POST with a body of at least RECV_MIN bytes**: Node's parser is stopped, the body
 *   bytes it had already read are taken from the request, and the addon's thread reads the rest
 *   straight off the socket into the upload file, hashing as it goes (`recvToFile`). Node's parser
 *   still thinks it is in the middle of that body, so the connection is closed after the answer
 *   (`Connection: close`); a client opens a new one for its next upload, which on a body this large
 *   costs nothing measurable.
 *
 * Both transfers run in threads of the addon's own (a slow client holds one thread, never libuv's
 * pool), on dup'ed fds, and are cancelled when the connection closes under them.
 *
 * Idle timeout: Node's timer on the socket sees none of the bytes the addon moves, so it would cut a
 * transfer that flows; it is lifted for the transfer, and the addon's thread applies the same
 * timeout instead (a client that moves no byte for that long is dropped), then Node's is put back.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FileHandle } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { finished } from 'node:stream';
import type { TransferHandle } from '../../common/fsx.ts';
import { nativeIo, plainHandle, takeFromParser, type NativeTransfer } from '../native.ts';
import { addReceivedBytes, addSentBytes } from './observe.ts';

/** Bodies smaller than this are read whole and written in one go: a thread per transfer is not worth it. */
export const SENDFILE_MIN = 256 << 10;
/** Request bodies from this size on are read by the addon. */
export const RECV_MIN = 1 << 20;
/** A client that moves no byte for this long is dropped, when the server set no idle timeout of its own. */
const IDLE_TIMEOUT_MS = 5 * 60_000;
/** Read size when a body is streamed through Node instead. */
const STREAM_CHUNK = 1 << 20;


/**
 * Run a transfer on `sock` with its idle timeout (`start` gets it in ms) moved from Node's timer to
 * the addon's thread (see the module comment); it is cancelled if `res` closes first (client gone,
 * server closing). A transfer the client let go idle ends the connection, as Node's timer would.
 */
function transfer(nat: NativeTransfer, res: ServerResponse, sock: Socket, start: (idleMs: number, done: (err: NodeJS.ErrnoException | null, n: number) => void) => TransferHandle): Promise<{ err: NodeJS.ErrnoException | null; n: number }> {
  const idle = sock.timeout;
  if (idle) sock.setTimeout(0);
  return new Promise((resolve) => {
    let over = false;
    const handle = start(idle || IDLE_TIMEOUT_MS, (err, n) => {
      over = true;
      if (err?.code === 'ETIMEDOUT') sock.destroy();
      else if (idle && !sock.destroyed) sock.setTimeout(idle);
      resolve({ err, n });
    });
    finished(res, () => { if (!over) nat.transferCancel(handle); });
  });
}

// ---- GET ----

/**
 * Send bytes [start, start + length) of the open file as the body of `res`, whose headers are set
 * (`writeHead`) but not yet sent; ends the response. A queued answer to a pipelined request first
 * waits for its turn on the connection. Never rejects: a failure mid-body destroys the connection
 * (the client sees a short body), as a failing stream does. Closes `fh`.
 */
export async function sendBody(req: IncomingMessage, res: ServerResponse, fh: FileHandle, start: number, length: number): Promise<void> {
  try {
    // the answer to a pipelined request waits for the ones before it to finish
    if (!res.socket && !res.destroyed) await socketAssigned(req, res);
    if (res.destroyed || !res.socket || res.socket.destroyed) return; // the client is gone
    if (length <= SENDFILE_MIN) return await smallBody(res, fh, start, length);
    const nat = nativeIo();
    if (nat && plainHandle(res.socket)) {
      res.flushHeaders();
      const sock = res.socket;
      const h = plainHandle(sock);
      // the headers must be in the kernel before the body goes out behind Node's back
      if (sock && h && sock.writableLength === 0) {
        const { err, n } = await transfer(nat, res, sock, (idleMs, done) => nat.sendfile(h.fd, fh.fd, start, length, idleMs, done));
        addSentBytes(sock, n);
        if (err) res.destroy(err);
        else res.end();
        return;
      }
    }
    await streamBody(res, fh, start, length);
  } finally {
    await fh.close().catch(() => {});
  }
}

/** Until a queued response gets the connection (or the connection goes away). */
function socketAssigned(req: IncomingMessage, res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const conn = req.socket;
    const done = () => {
      res.off('socket', done);
      conn.off('close', done);
      resolve();
    };
    res.once('socket', done);
    conn.once('close', done);
    if (conn.destroyed) done();
  });
}

/** A small body read whole, then written in one go. */
async function smallBody(res: ServerResponse, fh: FileHandle, start: number, length: number): Promise<void> {
  const buf = Buffer.allocUnsafe(length);
  let off = 0;
  try {
    while (off < length) {
      const { bytesRead } = await fh.read(buf, off, length - off, start + off);
      if (bytesRead === 0) throw new Error('the blob file ended early');
      off += bytesRead;
    }
  } catch {
    res.destroy();
    return;
  }
  res.end(buf);
}

/** The body through a read stream (TLS, no addon). */
function streamBody(res: ServerResponse, fh: FileHandle, start: number, length: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const src = fh.createReadStream({ start, end: start + length - 1, highWaterMark: STREAM_CHUNK, autoClose: false });
    src.on('error', () => res.destroy());
    finished(res, () => { src.destroy(); resolve(); });
    src.pipe(res);
  });
}

// ---- PUT / PATCH / POST ----

/** A request body taken from Node: the bytes its parser had read, and the rest still on the wire. */
export interface SocketBody {
  readonly kind: 'socket-body';
  readonly head: Buffer[];
  /** bytes still to read off the connection */
  readonly rest: number;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
}

export function isSocketBody(b: unknown): b is SocketBody {
  return typeof b === 'object' && b !== null && (b as { kind?: unknown }).kind === 'socket-body';
}

/**
 * Take the rest of the request's body away from Node, when it is large (Content-Length at least
 * RECV_MIN, not chunked), still being read, on a plain connection, and the addon can read it;
 * otherwise undefined (read `req` as a stream). Call it right before the body is consumed.
 */
export function takeSocketBody(req: IncomingMessage, res: ServerResponse): SocketBody | undefined {
  const t = nativeIo() ? takeFromParser(req, RECV_MIN) : undefined;
  if (!t) return undefined;
  res.shouldKeepAlive = false; // the parser is mid-body: this connection carries nothing more
  return { kind: 'socket-body', head: t.head, rest: t.rest, req, res };
}

/**
 * Read the rest of the body off the connection into `fileFd` (open for appending), advancing `sha256`
 * (an addon state) on the way, starting writeback every `writebackEvery` bytes. Resolves with the
 * bytes read; rejects when the connection fails or closes first (with the bytes read so far lost
 * to the caller, who cuts the file back).
 */
export async function receiveRest(body: SocketBody, fileFd: number, sha256: Buffer | null, writebackEvery: number): Promise<number> {
  const nat = nativeIo();
  const h = plainHandle(body.req.socket);
  if (!nat || !h) throw Object.assign(new Error('the connection closed before the request body was read'), { code: 'ECONNRESET' });
  if (body.rest === 0) return 0;
  const { err, n } = await transfer(nat, body.res, body.req.socket, (idleMs, done) => nat.recvToFile(h.fd, fileFd, body.rest, sha256, writebackEvery, idleMs, done));
  addReceivedBytes(body.req.socket, n);
  if (err) throw err;
  return n;
}
