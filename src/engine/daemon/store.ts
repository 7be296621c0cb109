/**
 * Container records: one dir per container under $PIER_ROOT/containers/<id>, its record in
 * container.json. The daemon is the only writer and keeps the records in memory too.
 *
 * The rules of records.ts hold (changes under the lock, on a copy, checked by the state machine
 * of state.ts, revision one up; copies out). The file carries a format version; a record of an
 * older pier is migrated when it is read, and written back in the new format at its next change
 * (never lost, never half-read).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../../common/atomic.ts';
import { PierError, messageOf } from '../../common/errors.ts';
import type { ContainerInfo } from '../api.ts';
import { ApiError } from './errors.ts';
import { RecordTable } from './records.ts';
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

export class ContainerRecords extends RecordTable<ContainerInfo> {
  readonly dir: string;
  protected readonly kind = 'container';
  /** Names given out by reserve() to creates still under way: no two creates get one name. */
  private reserved = new Map<string, string>();

  constructor(dir: string) {
    super();
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  protected check(before: ContainerInfo | undefined, after: ContainerInfo): void {
    checkChange(before, after);
  }

  protected persist(rec: ContainerInfo): void {
    mkdirSync(this.dirOf(rec.id), { recursive: true, mode: 0o700 });
    writeFileAtomic(join(this.dirOf(rec.id), 'container.json'), `${JSON.stringify({ version: RECORD_VERSION, ...rec }, null, 1)}\n`);
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
        this.keep(rec);
      } catch (err) {
        onBad(name, messageOf(err));
      }
    }
    return this.all();
  }

  dirOf(id: string): string {
    return join(this.dir, id);
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

  /** A new record (status created, revision 1); its name's reservation ends. */
  insert(rec: ContainerInfo): ContainerInfo {
    const taken = this.nameTaken(rec.name);
    if (taken && taken.id !== rec.id) throw new ApiError(409, `container name "${rec.name}" is already in use by container ${taken.id.slice(0, 12)}`);
    const r = this.insertRecord(rec);
    this.reserved.delete(rec.name);
    return r;
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
}
