/**
 * The sha256 state of an upload session, advanced as chunks arrive and copied before a chunk (a
 * failed chunk leaves the session's state as it was). With the pierfs addon the state is an OpenSSL
 * SHA256_CTX in a Buffer, which the addon's `recvToFile` thread can advance while it writes a body
 * straight off the connection; without it, a `node:crypto` Hash.
 */
import { createHash, type Hash } from 'node:crypto';
import { nativeSha256, type NativeSha256Fns as Native } from '../native.ts';

export interface Sha256 {
  update(data: Uint8Array): void;
  copy(): Sha256;
  /** hex digest of the bytes so far (the state stays usable) */
  hex(): string;
  /** the SHA256_CTX bytes, when the state is the addon's */
  readonly state?: Buffer;
}

class NativeSha256 implements Sha256 {
  readonly state: Buffer;
  private readonly nat: Native;
  constructor(nat: Native, state: Buffer) {
    this.nat = nat;
    this.state = state;
  }
  update(data: Uint8Array): void { this.nat.sha256Update(this.state, data); }
  copy(): Sha256 {
    const s = Buffer.allocUnsafeSlow(this.state.length); // its own, aligned memory
    this.state.copy(s);
    return new NativeSha256(this.nat, s);
  }
  hex(): string { return this.nat.sha256Hex(this.state); }
}

class NodeSha256 implements Sha256 {
  private readonly h: Hash;
  constructor(h: Hash) { this.h = h; }
  update(data: Uint8Array): void { this.h.update(data); }
  copy(): Sha256 { return new NodeSha256(this.h.copy()); }
  hex(): string { return this.h.copy().digest('hex'); }
}

export function newSha256(): Sha256 {
  const nat = nativeSha256();
  return nat ? new NativeSha256(nat, nat.sha256New()) : new NodeSha256(createHash('sha256'));
}
