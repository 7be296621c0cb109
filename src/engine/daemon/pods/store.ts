/**
 * Pod records: $PIER_ROOT/pods/<id>.json, one file per pod, with the same rules as container
 * records (../store.ts): changes under the pod's lock on a copy, checked against the pod's state
 * table, written atomically with a revision; reads hand out copies; a format version on disk.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../common/atomic.ts';
import { PierError, messageOf } from '../../../common/errors.ts';
import { KeyedMutex } from '../../../common/keyed-mutex.ts';
import type { PodRecord, PodStatus } from '../../api.ts';
import { ApiError, notFound } from '../errors.ts';

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

export class PodRecords {
  readonly dir: string;
  private byId = new Map<string, PodRecord>();
  private mutex = new KeyedMutex();

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
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
        this.byId.set(id, raw);
      } catch (err) {
        onBad(id, messageOf(err));
      }
    }
    return this.all();
  }

  all(): PodRecord[] {
    return [...this.byId.values()].sort((a, b) => (a.created < b.created ? 1 : -1)).map((p) => structuredClone(p));
  }

  find(ref: string): PodRecord | undefined {
    const r = this.lookup(ref);
    return r && structuredClone(r);
  }

  get(ref: string): PodRecord {
    const r = this.find(ref);
    if (!r) throw notFound(`no such pod: ${ref}`);
    return r;
  }

  nameTaken(name: string): PodRecord | undefined {
    for (const p of this.byId.values()) if (p.name === name) return structuredClone(p);
    return undefined;
  }

  private lookup(ref: string): PodRecord | undefined {
    const exact = this.byId.get(ref);
    if (exact) return exact;
    for (const p of this.byId.values()) if (p.name === ref) return p;
    if (/^[0-9a-f]+$/.test(ref)) {
      const hits = [...this.byId.values()].filter((p) => p.id.startsWith(ref));
      if (hits.length > 1) throw new PierError(`pod id prefix ${ref} is ambiguous`);
      return hits[0];
    }
    return undefined;
  }

  lock<T>(id: string, fn: () => Promise<T> | T): Promise<T> {
    return this.mutex.run(`pod:${id}`, fn);
  }

  /** As ContainerRecords.updateHeld: the caller holds the pod's lock. */
  async updateHeld(id: string, fn: (d: PodRecord) => void | Promise<void>): Promise<PodRecord> {
    if (!this.mutex.held(`pod:${id}`)) throw new ApiError(500, `pod ${id.slice(0, 12)}: record changed outside its lock`);
    const cur = this.byId.get(id);
    if (!cur) throw notFound(`no such pod: ${id}`);
    const d = structuredClone(cur);
    await fn(d);
    d.revision = cur.revision + 1;
    checkPodChange(cur, d);
    this.write(d);
    return structuredClone(d);
  }

  insert(rec: PodRecord): PodRecord {
    if (this.nameTaken(rec.name)) throw new ApiError(409, `pod name "${rec.name}" is already in use`);
    const r = { ...structuredClone(rec), revision: 1 };
    checkPodChange(undefined, r);
    this.write(r);
    return structuredClone(r);
  }

  delete(id: string): void {
    this.byId.delete(id);
    const f = join(this.dir, `${id}.json`);
    const doomed = join(this.dir, `.rm-${id}.json.tmp`);
    try { renameSync(f, doomed); } catch { return; }
    rmSync(doomed, { force: true });
  }

  private write(rec: PodRecord): void {
    writeFileAtomic(join(this.dir, `${rec.id}.json`), `${JSON.stringify({ version: POD_RECORD_VERSION, ...rec }, null, 1)}\n`);
    this.byId.set(rec.id, rec);
  }
}
