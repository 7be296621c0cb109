/**
 * Hijacked connections (docker's shape): a client sends `Connection: Upgrade` / `Upgrade: tcp`,
 * pierd answers `101 UPGRADED` and the socket then carries the shim protocol's frames
 * (shim/protocol.ts, docker's 8-byte header) both ways — STDOUT/STDERR/EXIT to the client,
 * STDIN/STDIN_EOF/RESIZE from it. pierd relays frames between the client and the container's
 * shim, whole frame by whole frame, so it can add its own (a resize from POST /exec/:id/resize)
 * between them and see the EXIT go by.
 *
 * Before the 101 everything is an ordinary HTTP answer with the API's JSON error shape.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { HttpError } from '../../common/http-server.ts';
import { FRAME, FrameReader, encodeFrame } from '../shim/index.ts';

/** The largest body of a hijacked request (a start's {Detach, Tty, ConsoleSize}). */
export const MAX_HIJACK_BODY = 64 * 1024;
/** How long the body of an upgrade request may take to arrive. */
const BODY_TIMEOUT_MS = 10_000;

/** Answer an upgrade request that is refused, and close. */
export function refuse(socket: Socket, status: number, message: string, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ message });
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`);
}

/** Accept the upgrade: from now on the socket is the stream (no HTTP timeouts: an idle shell is fine). */
export function accept(socket: Socket): void {
  socket.setTimeout(0);
  socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
}

/**
 * The JSON body of an upgrade request (node does not parse it): Content-Length bytes from `head`
 * and the socket. Returns it and what came after it (the stream's first bytes). undefined: no body.
 */
export async function readUpgradeBody(socket: Socket, head: Buffer, contentLength: string | undefined): Promise<{ value: unknown; rest: Buffer }> {
  if (contentLength === undefined || contentLength === '0') return { value: undefined, rest: head };
  if (!/^\d{1,9}$/.test(contentLength)) throw new HttpError(400, `bad Content-Length ${JSON.stringify(contentLength.slice(0, 20))}`);
  const want = Number(contentLength);
  if (want > MAX_HIJACK_BODY) throw new HttpError(413, `request body larger than ${MAX_HIJACK_BODY} bytes`);
  let buf = head;
  if (buf.length < want) {
    buf = await new Promise<Buffer>((resolve, reject) => {
      let acc = buf;
      const timer = setTimeout(() => { done(); reject(new HttpError(408, 'the request body did not arrive in time')); }, BODY_TIMEOUT_MS);
      const done = () => { clearTimeout(timer); socket.off('data', onData); socket.off('close', onClose); socket.pause(); };
      const onData = (c: Buffer) => { acc = Buffer.concat([acc, c]); if (acc.length >= want) { done(); resolve(acc); } };
      const onClose = () => { done(); reject(new HttpError(400, 'the connection closed before the request body arrived')); };
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.resume();
    });
  }
  const text = buf.subarray(0, want).toString('utf8');
  let value: unknown;
  try { value = JSON.parse(text); } catch { throw new HttpError(400, 'request body is not valid JSON'); }
  return { value, rest: buf.subarray(want) };
}

export interface Relay {
  /** send a frame of pierd's own to the shim, between the client's frames */
  toShim(frame: Buffer): void;
  /** both sides are done */
  closed: Promise<void>;
}

/**
 * Relay frames between a hijacked client and a shim stream. The client may send STDIN, STDIN_EOF
 * and RESIZE; the shim's frames go to the client as they come, `onShimFrame` sees each first. A
 * slow side pauses the other (as docker's attach does). The shim ending the stream ends the
 * client's; the client going away calls `onClientGone` (exec: let the process run on, stdin at
 * EOF; attach: detach).
 */
export function relay(opts: {
  client: Socket; clientRest: Buffer; shim: Socket; shimRest: Buffer;
  onShimFrame?: (type: number, payload: Buffer) => void;
  onClientGone: () => void;
}): Relay {
  const { client, shim } = opts;
  const fromClient = new FrameReader();
  const fromShim = new FrameReader();
  let clientOpen = true;
  const toShim = (frame: Buffer) => {
    if (shim.destroyed || !shim.writable) return;
    if (!shim.write(frame)) { client.pause(); shim.once('drain', () => client.resume()); }
  };
  const onClientData = (chunk: Buffer) => {
    let frames;
    try { frames = fromClient.push(chunk); } catch { client.destroy(); return; }
    for (const f of frames) {
      if (!('type' in f)) continue;
      if (f.type === FRAME.STDIN || f.type === FRAME.STDIN_EOF || f.type === FRAME.RESIZE) toShim(encodeFrame(f.type, f.payload));
    }
  };
  const onShimData = (chunk: Buffer) => {
    let frames;
    try { frames = fromShim.push(chunk); } catch { shim.destroy(); return; }
    for (const f of frames) {
      if (!('type' in f)) continue;
      opts.onShimFrame?.(f.type, f.payload);
      if (!clientOpen || client.destroyed) continue;
      if (f.type === FRAME.STDOUT || f.type === FRAME.STDERR || f.type === FRAME.EXIT) {
        if (!client.write(encodeFrame(f.type, f.payload))) { shim.pause(); client.once('drain', () => shim.resume()); }
      }
    }
  };
  const shimClosed = new Promise<void>((resolve) => shim.once('close', () => { if (clientOpen) client.end(); resolve(); }));
  const clientClosed = new Promise<void>((resolve) => client.once('close', () => {
    if (clientOpen) { clientOpen = false; shim.resume(); opts.onClientGone(); }
    resolve();
  }));
  client.on('error', () => undefined);
  shim.on('error', () => undefined);
  client.on('data', onClientData);
  shim.on('data', onShimData);
  if (opts.clientRest.length) onClientData(opts.clientRest);
  if (opts.shimRest.length) onShimData(opts.shimRest);
  client.resume();
  shim.resume();
  return { toShim, closed: Promise.all([shimClosed, clientClosed]).then(() => undefined) };
}
