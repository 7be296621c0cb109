/**
 * Pod records: $PIER_ROOT/pods/<id>.json, one file per pod, with records.ts's rules (changes under
 * the pod's lock on a copy, checked against the pod's state table below, written atomically with a
 * revision; copies out) and a format version on disk.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../common/atomic.ts';
import { PierError, messageOf } from '../../../common/errors.ts';
import { RecordTable } from '../records.ts';
import type { PodRecord, PodStatus } from '../../api.ts';
import { ApiError } from '../errors.ts';

export const POD_RECORD_VERSION = 1;

/** A pod's wanted state: which may follow which (staying put is always allowed). */
export const POD_TRANSITIONS: Readonly<Record<PodStatus, readonly PodStatus[]>> = {
  created: ['running', 'removing'],
  running: ['stopped', 'removing'],
  stopped: ['running', 'removing'],
  removing: [],
};

export function checkPodChange(before: PodRecord | undefined, after: PodRecord): void {
  if (before && before.status !== after.status && !POD_TRANSITIONS[before.status].includes(after.status)) {
    throw new ApiError(409, `pod ${after.name}: cannot go from ${before.status} to ${after.status}`);
  }
  if (!before && after.status !== 'created') throw new ApiError(500, `pod ${after.name}: a new pod must be created, not ${after.status}`);
}

const ID = /^[0-9a-f]{64}$/;

export class PodRecords extends RecordTable<PodRecord> {
  readonly dir: string;
  protected readonly kind = 'pod';

  constructor(dir: string) {
    super();
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  protected check(before: PodRecord | undefined, after: PodRecord): void {
    checkPodChange(before, after);
  }

  protected persist(rec: PodRecord): void {
    writeFileAtomic(join(this.dir, `${rec.id}.json`), `${JSON.stringify({ version: POD_RECORD_VERSION, ...rec }, null, 1)}\n`);
  }

  load(onBad: (id: string, why: string) => void = () => undefined): PodRecord[] {
    this.byId.clear();
    for (const f of readdirSync(this.dir)) {
      if (f.startsWith('.')) { if (f.endsWith('.tmp')) rmSync(join(this.dir, f), { force: true }); continue; }
      const id = f.replace(/\.json$/, '');
      if (!ID.test(id) || !f.endsWith('.json')) continue;
      try {
        const raw = JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as PodRecord & { version?: number };
        if (raw.version !== POD_RECORD_VERSION) throw new PierError(`format version ${JSON.stringify(raw.version)} is not ${POD_RECORD_VERSION}`);
        delete raw.version;
        if (raw.id !== id) throw new PierError('its id is not its file name');
        this.keep(raw);
      } catch (err) {
        onBad(id, messageOf(err));
      }
    }
    return this.all();
  }

  nameTaken(name: string): boolean {
    for (const p of this.byId.values()) if (p.name === name) return true;
    return false;
  }

  insert(rec: PodRecord): PodRecord {
    if (this.nameTaken(rec.name)) throw new ApiError(409, `pod name "${rec.name}" is already in use`);
    return this.insertRecord(rec);
  }

  delete(id: string): void {
    if (this.byId.has(id)) this.assertHeld(id);
    this.byId.delete(id);
    const f = join(this.dir, `${id}.json`);
    const doomed = join(this.dir, `.rm-${id}.json.tmp`);
    try { renameSync(f, doomed); } catch { return; }
    rmSync(doomed, { force: true });
  }
}
