/**
 * Container records: one dir per container under $PIER_ROOT/containers/<id>, its record in
 * container.json. The daemon is the only writer and keeps the records in memory too.
 *
 * The rules every caller lives by (the class of race that failed CI once: edits outside the lock):
 *  - a record changes only through update()/updateHeld(): under the container's lock, on a copy,
 *    checked against the state machine (state.ts), written atomically, with the revision one up;
 *  - what get()/find()/all() hand out are copies: changing one changes nothing;
 *  - the file carries a format version; a record of an older pier is migrated when it is read, and
 *    written back in the new format at its next change (never lost, never half-read).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../../common/atomic.ts';
import { PierError, messageOf } from '../../common/errors.ts';
import { KeyedMutex } from '../../common/keyed-mutex.ts';
import type { ContainerInfo } from '../api.ts';
import { ApiError, notFound } from './errors.ts';
import { checkChange } from './state.ts';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ID = /^[0-9a-f]{64}$/;

/**
 * container.json's format. 1: pier up to issue 10 (no version field, no revision). 2: `version`
 * and `revision` fields, `state.restartAt` while restarting.
 */
export const RECORD_VERSION = 2;

export function newId(): string {
  return randomBytes(32).toString('hex');
}

export function validateName(name: string): string {
  if (!NAME.test(name) || name.length > 128) throw new PierError(`invalid container name ${JSON.stringify(name)}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  return name;
}

/**
 * A record as read from disk, in any format this pier knows, as the current one. Throws on a
 * record from a newer pier (its fields may mean what this one cannot know) or one without an id.
 */
export function migrateRecord(raw: unknown): ContainerInfo {
  if (!raw || typeof raw !== 'object') throw new PierError('not a JSON object');
  const r = { ...(raw as Record<string, unknown>) };
  const version = r.version === undefined ? 1 : r.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) throw new PierError(`bad format version ${JSON.stringify(r.version)}`);
  if (version > RECORD_VERSION) throw new PierError(`format version ${version} is newer than this pier's (${RECORD_VERSION}): upgrade pier`);
  if (typeof r.id !== 'string' || !ID.test(r.id)) throw new PierError('no container id');
  delete r.version;
  const rec = r as unknown as ContainerInfo;
  if (version === 1) {
    // v1 wrote no revision; its state had no restartAt, so a restarting record of it restarts now.
    rec.revision = 1;
    rec.state = { restartCount: 0, manuallyStopped: false, oomKilled: false, pid: 0, shimPid: 0, ...(rec.state as Partial<ContainerInfo['state']>) } as ContainerInfo['state'];
    if (rec.state.status === 'restarting' && rec.state.restartAt === undefined) rec.state.restartAt = 0;
    rec.network = { ...rec.network, ports: rec.network?.ports ?? [], ips: rec.network?.ips ?? {}, networks: rec.network?.networks ?? [] };
    rec.mounts ??= [];
  }
  return rec;
}

const ADJ = ['brave', 'calm', 'eager', 'fond', 'keen', 'lucid', 'merry', 'nimble', 'proud', 'quiet', 'sharp', 'tidy', 'vivid', 'witty', 'zen'];
const NOUN = ['anchor', 'beacon', 'bollard', 'buoy', 'cable', 'cleat', 'dock', 'ferry', 'harbor', 'jetty', 'keel', 'mast', 'quay', 'rudder', 'wharf'];

export class ContainerRecords {
  readonly dir: string;
  private byId = new Map<string, ContainerInfo>();
  private mutex = new KeyedMutex();
  /** Names given out by reserve() to creates still under way: no two creates get one name. */
  private reserved = new Map<string, string>();

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /**
   * Read every record on disk (daemon start). Half-made dirs from a crash during create are
   * removed; a record this pier cannot read is kept on disk untouched and reported.
   */
  load(onBad: (id: string, why: string) => void = () => undefined): ContainerInfo[] {
    this.byId.clear();
    for (const name of readdirSync(this.dir)) {
      const dir = join(this.dir, name);
      if (name.startsWith('.tmp-')) { rmSync(dir, { recursive: true, force: true }); continue; }
      if (!ID.test(name)) continue;
      let text: string;
      try {
        text = readFileSync(join(dir, 'container.json'), 'utf8');
      } catch {
        // No record: the dir outlived a crash between mkdir and the first save. Nothing refers to it.
        if (!existsSync(join(dir, 'container.json'))) rmSync(dir, { recursive: true, force: true });
        continue;
      }
      try {
        const rec = migrateRecord(JSON.parse(text));
        if (rec.id !== name) throw new PierError(`its id ${rec.id} is not its directory's`);
        this.byId.set(rec.id, rec);
      } catch (err) {
        onBad(name, messageOf(err));
      }
    }
    return this.all();
  }

  dirOf(id: string): string {
    return join(this.dir, id);
  }

  all(): ContainerInfo[] {
    return [...this.byId.values()].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0)).map(copy);
  }

  /** The record itself, for this module's writers only. */
  private lookup(ref: string): ContainerInfo | undefined {
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

  /** By full id, name, or unique id prefix (docker's rules); a copy. */
  find(ref: string): ContainerInfo | undefined {
    const r = this.lookup(ref);
    return r && copy(r);
  }

  get(ref: string): ContainerInfo {
    const c = this.find(ref);
    if (!c) throw notFound(`no such container: ${ref}`);
    return c;
  }

  /** The full id a reference names (404 when none). */
  idOf(ref: string): string {
    const r = this.lookup(ref);
    if (!r) throw notFound(`no such container: ${ref}`);
    return r.id;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  nameTaken(name: string): { id: string; name: string } | undefined {
    for (const c of this.byId.values()) if (c.name === name) return { id: c.id, name: c.name };
    const id = this.reserved.get(name);
    return id ? { id, name } : undefined;
  }

  /** Hold a name for a create under way (released by insert or release). */
  reserve(name: string, id: string): void {
    this.reserved.set(name, id);
  }

  release(name: string): void {
    this.reserved.delete(name);
  }

  generateName(): string {
    for (;;) {
      const b = randomBytes(3);
      const name = `${ADJ[b[0] % ADJ.length]}_${NOUN[b[1] % NOUN.length]}${b[2] % 100}`;
      if (!this.nameTaken(name)) return name;
    }
  }

  // ---- writes -------------------------------------------------------------------------------------

  /** One turn of a container's lock (not re-entrant: inside, use updateHeld). */
  lock<T>(id: string, fn: () => Promise<T> | T): Promise<T> {
    return this.mutex.run(id, fn);
  }

  held(id: string): boolean {
    return this.mutex.held(id);
  }

  /** Keys locked or waited for (leak checks). */
  get lockCount(): number {
    return this.mutex.size;
  }

  /**
   * Change one record: under its lock, fn edits a copy; the change is checked, written atomically
   * and becomes the record, revision one up. fn throwing writes nothing. Resolves with a copy.
   */
  update(id: string, fn: (draft: ContainerInfo) => void | Promise<void>): Promise<ContainerInfo> {
    return this.lock(id, () => this.updateHeld(id, fn));
  }

  /** As update(), for a caller already inside the container's lock. */
  async updateHeld(id: string, fn: (draft: ContainerInfo) => void | Promise<void>): Promise<ContainerInfo> {
    this.assertHeld(id);
    const cur = this.byId.get(id);
    if (!cur) throw notFound(`no such container: ${id}`);
    const draft = copy(cur);
    await fn(draft);
    // fn may have awaited: the current record is still the one it started from (we hold the lock)
    if (draft.id !== cur.id) throw new ApiError(500, `container ${cur.name}: an update may not change the id`);
    draft.revision = cur.revision + 1;
    checkChange(cur, draft);
    this.write(draft);
    return copy(draft);
  }

  /** A new record (status created, revision 1); its name's reservation ends. */
  insert(rec: ContainerInfo): ContainerInfo {
    if (this.byId.has(rec.id)) throw new ApiError(500, `container ${rec.id} exists`);
    const taken = this.nameTaken(rec.name);
    if (taken && taken.id !== rec.id) throw new ApiError(409, `container name "${rec.name}" is already in use by container ${taken.id.slice(0, 12)}`);
    const r = copy({ ...rec, revision: 1 });
    checkChange(undefined, r);
    this.write(r);
    this.reserved.delete(rec.name);
    return copy(r);
  }

  /** Forget and delete a container's dir (renamed first so a crash never leaves half a record). */
  delete(id: string): void {
    if (this.byId.has(id)) this.assertHeld(id);
    this.byId.delete(id);
    const dir = this.dirOf(id);
    if (!existsSync(dir)) return;
    const doomed = join(this.dir, `.tmp-rm-${id}`);
    renameSync(dir, doomed);
    rmSync(doomed, { recursive: true, force: true });
  }

  /** Drop a dir of a create that failed before its record was written. */
  discard(id: string): void {
    if (this.byId.has(id)) throw new ApiError(500, `container ${id}: discard of a written record`);
    rmSync(this.dirOf(id), { recursive: true, force: true });
  }

  private assertHeld(id: string): void {
    if (!this.mutex.held(id)) throw new ApiError(500, `container ${id.slice(0, 12)}: record changed outside its lock`);
  }

  private write(rec: ContainerInfo): void {
    mkdirSync(this.dirOf(rec.id), { recursive: true, mode: 0o700 });
    writeFileAtomic(join(this.dirOf(rec.id), 'container.json'), `${JSON.stringify({ version: RECORD_VERSION, ...rec }, null, 1)}\n`);
    this.byId.set(rec.id, rec);
  }
}

function copy(rec: ContainerInfo): ContainerInfo {
  return structuredClone(rec);
}
