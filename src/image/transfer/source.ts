/**
 * Where an import reads from: a directory, or an archive already ingested by ingestTar. Both give
 * small members as bytes and put large ones into the content store, verified against what the
 * caller expects.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { PierError, errnoOf } from '../../common/errors.ts';
import type { BlobInfo, ContentStore, Expected, Lease } from '../store/content.ts';
import { cleanMemberName, type IngestedTar, type Member } from './tar.ts';

export interface Source {
  /** for messages: the path given */
  readonly label: string;
  has(member: string): boolean;
  readBytes(member: string): Promise<Buffer>;
  /** The member's content in the store (written now if needed), checked against `expected`. */
  storeMember(member: string, expected: Expected): Promise<BlobInfo>;
}

export class DirSource implements Source {
  readonly label: string;
  readonly dir: string;
  readonly store: ContentStore;
  readonly lease: Lease;
  constructor(dir: string, store: ContentStore, lease: Lease) {
    this.label = dir;
    this.dir = realpathSync(dir);
    this.store = store;
    this.lease = lease;
  }

  private path(member: string): string {
    const p = join(this.dir, cleanMemberName(member));
    let real: string;
    try { real = realpathSync(p); } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new PierError(`${this.label}: ${member} is missing`);
      throw err;
    }
    if (real !== this.dir && !real.startsWith(this.dir + sep)) throw new PierError(`${this.label}: ${member} points outside the directory`);
    return real;
  }

  has(member: string): boolean {
    try { return statSync(this.path(member)).isFile(); } catch { return false; }
  }

  async readBytes(member: string): Promise<Buffer> {
    return readFileSync(this.path(member));
  }

  async storeMember(member: string, expected: Expected): Promise<BlobInfo> {
    const r = await this.store.writeFile(this.path(member), expected, this.lease);
    return { digest: r.digest, size: r.size };
  }
}

export class TarSource implements Source {
  readonly label: string;
  readonly tar: IngestedTar;
  readonly store: ContentStore;
  readonly lease: Lease;
  constructor(label: string, tar: IngestedTar, store: ContentStore, lease: Lease) {
    this.label = label;
    this.tar = tar;
    this.store = store;
    this.lease = lease;
  }

  private member(name: string): Member | undefined {
    let n = cleanMemberName(name);
    for (let hops = 0; hops < 16; hops++) {
      const m = this.tar.members.get(n);
      if (m) return m;
      const next = this.tar.links.get(n);
      if (next === undefined) return undefined;
      n = next;
    }
    throw new PierError(`${this.label}: too many links resolving ${name}`);
  }

  has(name: string): boolean {
    return this.member(name) !== undefined;
  }

  async readBytes(name: string): Promise<Buffer> {
    const m = this.member(name);
    if (!m) throw new PierError(`${this.label}: ${name} is missing`);
    return m.kind === 'bytes' ? m.data : this.store.readBytes(m.blob.digest);
  }

  async storeMember(name: string, expected: Expected): Promise<BlobInfo> {
    const m = this.member(name);
    if (!m) throw new PierError(`${this.label}: ${name} is missing`);
    if (m.kind === 'bytes') {
      const r = await this.store.write(m.data, expected, this.lease);
      return { digest: r.digest, size: r.size };
    }
    if (expected.digest !== undefined && m.blob.digest !== expected.digest) {
      throw new PierError(`blob ${expected.digest} does not match its content (got ${m.blob.digest})`);
    }
    if (expected.size !== undefined && m.blob.size !== expected.size) {
      throw new PierError(`blob ${m.blob.digest} has ${m.blob.size} bytes, not the declared ${expected.size}`);
    }
    return m.blob;
  }
}

export function isDirectory(path: string): boolean {
  try { return statSync(path).isDirectory(); } catch { return false; }
}

