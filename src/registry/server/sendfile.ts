/**
 * Blob bodies by sendfile(2): the kernel copies page cache → socket, with no pass through user
 * space and no event-loop turn per chunk. The copy runs in a thread of the pierfs addon
 * (`fsx().sendfile`); Node sends the headers, and is told the response ended (`res.end()` with no
 * body) only after the thread is done, so nothing else is written on the connection meanwhile.
 *
 * Used for plain-HTTP connections when the addon has it; over TLS, or when the headers could not be
 * flushed first, the body goes through a read stream as before (`streamBody`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FileHandle } from 'node:fs/promises';
import { Socket } from 'node:net';
import { finished } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { fsx, type PierFs } from '../../common/fsx.ts';
import { STREAM_CHUNK } from './storage.ts';
import { addSentBytes } from './observe.ts';

/** Bodies smaller than this are streamed: a thread per transfer is not worth it. */
export const SENDFILE_MIN = 256 << 10;
/** A client that takes no byte for this long is dropped (the stream path holds it forever). */
const IDLE_TIMEOUT_MS = 5 * 60_000;

type Native = Required<Pick<PierFs, 'sendfile' | 'sendfileCancel'>>;
let native: Native | null | undefined;

function nativeSendfile(): Native | null {
  if (native === undefined) {
    native = null;
    if (process.env.PIER_REGISTRY_SENDFILE !== '0') {
      try {
        const f = fsx();
        if (typeof f.sendfile === 'function' && typeof f.sendfileCancel === 'function') native = f as Native;
      } catch { /* no addon: stream */ }
    }
  }
  return native;
}

/** The fd of a plain TCP connection, or undefined (TLS, or no handle). */
function plainFd(sock: Socket | null): number | undefined {
  if (!sock || sock instanceof TLSSocket || !(sock instanceof Socket)) return undefined;
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Whether `sendBody` would use sendfile for `length` bytes on this response's connection. */
export function canSendfile(res: ServerResponse, length: number): boolean {
  return length >= SENDFILE_MIN && nativeSendfile() !== null && plainFd(res.socket) !== undefined;
}

/**
 * Send bytes [start, start + length) of the open file as the body of `res`, whose headers are set
 * (`writeHead`) but not yet sent; ends the response. A queued answer to a pipelined request first
 * waits for its turn on the connection. Never rejects: a failure mid-body destroys the
 * connection (the client sees a short body), as a failing stream does. Closes `fh`.
 */
export async function sendBody(req: IncomingMessage, res: ServerResponse, fh: FileHandle, start: number, length: number): Promise<void> {
  try {
    // the answer to a pipelined request waits for the ones before it to finish
    if (!res.socket && !res.destroyed) await socketAssigned(req, res);
    if (res.destroyed || !res.socket || res.socket.destroyed) return; // the client is gone
    const nat = canSendfile(res, length) ? nativeSendfile() : null;
    if (nat) {
      res.flushHeaders();
      const sock = res.socket;
      const fd = plainFd(sock);
      // the headers must be in the kernel before the body goes out behind Node's back
      if (sock && fd !== undefined && sock.writableLength === 0 && !sock.destroyed) {
        await viaSendfile(nat, res, sock, fd, fh.fd, start, length);
        return;
      }
    }
    if (length <= SENDFILE_MIN) await smallBody(res, fh, start, length);
    else await streamBody(res, fh, start, length);
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

function viaSendfile(nat: Native, res: ServerResponse, sock: Socket, fd: number, fileFd: number, start: number, length: number): Promise<void> {
  return new Promise<void>((resolve) => {
    let done = false;
    const handle = nat.sendfile(fd, fileFd, start, length, IDLE_TIMEOUT_MS, (err, sent) => {
      done = true;
      addSentBytes(sock, sent);
      if (err) res.destroy(err);
      else res.end();
      resolve();
    });
    // the connection closing under the transfer (client gone, server closing) stops it
    finished(res, () => { if (!done) nat.sendfileCancel(handle); });
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
