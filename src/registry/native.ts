/**
 * What the registry's server and client share to move bodies through the pierfs addon: the addon's
 * transfer functions (absent: both fall back to Node streams; PIER_REGISTRY_NATIVE_IO=0 forces that)
 * and the fd of a plain TCP socket (TLS sockets have no usable one).
 */
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { fsx, type PierFs } from '../common/fsx.ts';

export type NativeTransfer = Required<Pick<PierFs, 'sendfile' | 'recvInto' | 'recvToFile' | 'transferCancel'>>;
let native: NativeTransfer | null | undefined;

export function nativeIo(): NativeTransfer | null {
  if (native === undefined) {
    native = null;
    if (process.env.PIER_REGISTRY_NATIVE_IO !== '0') {
      try {
        const f = fsx();
        if (typeof f.sendfile === 'function' && typeof f.recvInto === 'function' && typeof f.recvToFile === 'function' && typeof f.transferCancel === 'function') native = f as NativeTransfer;
      } catch { /* no addon: streams */ }
    }
  }
  return native;
}

export interface StreamHandle { fd?: unknown; readStop?: () => number }

/** The libuv handle of a connected plain TCP socket with an fd, or undefined (TLS, closed, connecting). */
export function plainHandle(sock: Socket | null): (StreamHandle & { fd: number }) | undefined {
  if (!sock || sock instanceof TLSSocket || !(sock instanceof Socket) || sock.destroyed || sock.connecting) return undefined;
  const h = (sock as unknown as { _handle?: StreamHandle })._handle;
  return h && typeof h.fd === 'number' && h.fd >= 0 ? (h as StreamHandle & { fd: number }) : undefined;
}

export type NativeSha256Fns = Required<Pick<PierFs, 'sha256New' | 'sha256Update' | 'sha256Hex'>>;
let sha: NativeSha256Fns | null | undefined;

/** The addon's sha256 (a state a `recvToFile` thread can advance), or null (same switch as nativeIo). */
export function nativeSha256(): NativeSha256Fns | null {
  if (sha === undefined) {
    sha = null;
    if (process.env.PIER_REGISTRY_NATIVE_IO !== '0') {
      try {
        const f = fsx();
        if (typeof f.sha256New === 'function' && typeof f.sha256Update === 'function' && typeof f.sha256Hex === 'function') sha = f as NativeSha256Fns;
      } catch { /* no addon */ }
    }
  }
  return sha;
}
