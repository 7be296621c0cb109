/**
 * What the registry's server and client share to move bodies through the pierfs addon: the addon's
 * transfer and sha256 functions (absent: both fall back to Node streams; PIER_REGISTRY_NATIVE_IO=0
 * forces that), the fd of a plain TCP socket (TLS sockets have no usable one), and taking a large
 * body away from Node's HTTP parser so an addon thread can read it off that socket.
 */
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { fsx, type PierFs } from '../common/fsx.ts';

export type NativeTransfer = Required<Pick<PierFs, 'sendfile' | 'recvInto' | 'recvToFile' | 'transferCancel'>>;
export type NativeSha256Fns = Required<Pick<PierFs, 'sha256New' | 'sha256Update' | 'sha256Hex'>>;

/** The addon, when it has every one of `fns` (and PIER_REGISTRY_NATIVE_IO is not 0), else null. */
function probe<T>(fns: string[]): T | null {
  if (process.env.PIER_REGISTRY_NATIVE_IO === '0') return null;
  try {
    const f = fsx() as unknown as Record<string, unknown>;
    return fns.every((n) => typeof f[n] === 'function') ? (f as T) : null;
  } catch {
    return null; // no addon: streams
  }
}

let native: NativeTransfer | null | undefined;
export function nativeIo(): NativeTransfer | null {
  if (native === undefined) native = probe<NativeTransfer>(['sendfile', 'recvInto', 'recvToFile', 'transferCancel']);
  return native;
}

let sha: NativeSha256Fns | null | undefined;
/** The addon's sha256 (a state a `recvToFile` thread can advance), or null (same switch as nativeIo). */
export function nativeSha256(): NativeSha256Fns | null {
  if (sha === undefined) sha = probe<NativeSha256Fns>(['sha256New', 'sha256Update', 'sha256Hex']);
  return sha;
}

export interface StreamHandle { fd?: unknown; readStop?: () => number }

/** The libuv handle of a connected plain TCP socket with an fd, or undefined (TLS, closed, connecting). */
export function plainHandle(sock: Socket | null): (StreamHandle & { fd: number }) | undefined {
  if (!sock || sock instanceof TLSSocket || !(sock instanceof Socket) || sock.destroyed || sock.connecting) return undefined;
  const h = (sock as unknown as { _handle?: StreamHandle })._handle;
  return h && typeof h.fd === 'number' && h.fd >= 0 ? (h as StreamHandle & { fd: number }) : undefined;
}


/** A large message body taken from Node's parser: the bytes it had read, and the rest on the wire. */
export interface ParserTake {
  head: Buffer[];
  /** body bytes still on the connection */
  rest: number;
  fd: number;
  sock: Socket;
}

/**
 * Stop Node's parser on a message (request or response) whose body is at least `min` bytes by
 * Content-Length, not chunked, not yet read, on a plain connection whose socket the parser reads
 * natively: the body bytes it had read are handed back, the rest is left on the socket for the
 * addon. Undefined when any of that does not hold (read the message as a stream then). The
 * connection can carry nothing after this message: the parser stays mid-body.
 */
export function takeFromParser(msg: IncomingMessage, min: number): ParserTake | undefined {
  if (msg.headers['transfer-encoding'] !== undefined || msg.complete || msg.readableEnded) return undefined;
  const raw = msg.headers['content-length'];
  const length = raw === undefined ? NaN : Number(raw);
  if (!Number.isSafeInteger(length) || length < min) return undefined;
  const sock = msg.socket;
  const h = plainHandle(sock);
  // raw bytes in the socket's own buffer would mean the parser does not read it natively
  if (!sock || !h || typeof h.readStop !== 'function' || sock.readableLength > 0) return undefined;
  // Stop Node's reads for good: `_paused` keeps the message's own _read (below) from restarting them.
  (sock as unknown as { _paused: boolean })._paused = true;
  h.readStop();
  const head: Buffer[] = [];
  let got = 0;
  for (let c: Buffer | null; (c = msg.read() as Buffer | null) !== null;) {
    head.push(c);
    got += c.length;
  }
  h.readStop();
  return { head, rest: Math.max(0, length - got), fd: h.fd, sock };
}
