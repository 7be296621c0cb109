/**
 * Container records: one dir per container under $PIER_ROOT/containers/<id>, its record in
 * container.json (written atomically). The daemon keeps them in memory too and is the only writer.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../../common/atomic.ts';
import { PierError } from '../../common/errors.ts';
import type { ContainerInfo } from '../api.ts';
import { notFound } from './errors.ts';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ID = /^[0-9a-f]{64}$/;

export function newId(): string {
  return randomBytes(32).toString('hex');
}

export function validateName(name: string): string {
  if (!NAME.test(name) || name.length > 128) throw new PierError(`invalid container name ${JSON.stringify(name)}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  return name;
}

const ADJ = ['brave', 'calm', 'eager', 'fond', 'keen', 'lucid', 'merry', 'nimble', 'proud', 'quiet', 'sharp', 'tidy', 'vivid', 'witty', 'zen'];
const NOUN = ['anchor', 'beacon', 'bollard', 'buoy', 'cable', 'cleat', 'dock', 'ferry', 'harbor', 'jetty', 'keel', 'mast', 'quay', 'rudder', 'wharf'];

export class ContainerRecords {
  readonly dir: string;
  private byId = new Map<string, ContainerInfo>();

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Read every record on disk (daemon start); half-made dirs from a crash during create are removed. */
  load(): ContainerInfo[] {
    this.byId.clear();
    for (const name of readdirSync(this.dir)) {
      const dir = join(this.dir, name);
      if (name.startsWith('.tmp-')) { rmSync(dir, { recursive: true, force: true }); continue; }
      if (!ID.test(name)) continue;
      try {
        const rec = JSON.parse(readFileSync(join(dir, 'container.json'), 'utf8')) as ContainerInfo;
        this.byId.set(rec.id, rec);
      } catch {
        // No record: the dir outlived a crash between mkdir and the first save. Nothing refers to it.
        if (!existsSync(join(dir, 'container.json'))) rmSync(dir, { recursive: true, force: true });
      }
    }
    return [...this.byId.values()];
  }

  dirOf(id: string): string {
    return join(this.dir, id);
  }

  all(): ContainerInfo[] {
    return [...this.byId.values()].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  }

  /** By full id, name, or unique id prefix (docker's rules). */
  find(ref: string): ContainerInfo | undefined {
    const exact = this.byId.get(ref);
    if (exact) return exact;
    for (const c of this.byId.values()) if (c.name === ref) return c;
    if (/^[0-9a-f]+$/.test(ref)) {
      const hits = [...this.byId.values()].filter((c) => c.id.startsWith(ref));
      if (hits.length > 1) throw new PierError(`container id prefix ${ref} is ambiguous`);
      return hits[0];
    }
    return undefined;
  }

  get(ref: string): ContainerInfo {
    const c = this.find(ref);
    if (!c) throw notFound(`no such container: ${ref}`);
    return c;
  }

  nameTaken(name: string): ContainerInfo | undefined {
    for (const c of this.byId.values()) if (c.name === name) return c;
    return undefined;
  }

  generateName(): string {
    for (;;) {
      const b = randomBytes(3);
      const name = `${ADJ[b[0] % ADJ.length]}_${NOUN[b[1] % NOUN.length]}${b[2] % 100}`;
      if (!this.nameTaken(name)) return name;
    }
  }

  save(rec: ContainerInfo): void {
    mkdirSync(this.dirOf(rec.id), { recursive: true, mode: 0o700 });
    writeFileAtomic(join(this.dirOf(rec.id), 'container.json'), `${JSON.stringify(rec, null, 1)}\n`);
    this.byId.set(rec.id, rec);
  }

  /** Forget and delete a container's dir (renamed first so a crash never leaves half a record). */
  delete(id: string): void {
    this.byId.delete(id);
    const dir = this.dirOf(id);
    if (!existsSync(dir)) return;
    const doomed = join(this.dir, `.tmp-rm-${id}`);
    renameSync(dir, doomed);
    rmSync(doomed, { recursive: true, force: true });
  }
}
