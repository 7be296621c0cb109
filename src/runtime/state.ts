/**
 * The container store: one directory per container under the runtime root, holding state.json and,
 * between create and start, exec.fifo. The directory is made with mkdir(2), which is also the
 * "id already taken" check; state.json is replaced atomically so readers never see a torn record.
 * Status is derived, as runc does: frozen → paused; init gone, a zombie or a reused pid → stopped;
 * fifo present → created; otherwise running.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errnoOf, PierError } from '../common/errors.ts';
import { mkdirp, writeFileAtomic } from '../common/atomic.ts';
import type { Spec, State } from './spec.ts';
import { isProcessAlive } from './proc.ts';
import { validateId } from './validate.ts';
import { cgroupFromRecord, type CgroupRecord } from './cgroups/index.ts';

export const STATE_OCI_VERSION = '1.0.2';

export interface ContainerRecord {
  id: string;
  bundle: string;
  rootfs: string;
  pid: number;
  /** /proc/<pid>/stat start time of the init, the PID-reuse guard. */
  startTime?: string;
  created: string;
  owner: string;
  /** `creating` until create finishes; otherwise the derived status applies. */
  phase: 'creating' | 'created';
  annotations?: Record<string, string>;
  config: Spec;
  cgroup?: CgroupRecord;
}

export type Status = State['status'];

export class ContainerStore {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  /**
   * A container's state dir. Every path from an id goes through here, so the id is checked here
   * (runc's rule): `delete --force ../victim` once removed a directory beside the root.
   */
  dir(id: string): string {
    return join(this.root, validateId(id));
  }

  fifo(id: string): string {
    return join(this.dir(id), 'exec.fifo');
  }

  /** Make the container's directory; fails if the id is taken or the root is unusable. */
  reserve(id: string): string {
    try {
      mkdirp(this.root, 0o700);
    } catch (err) {
      throw new PierError(`cannot create runtime root ${this.root}: ${(err as Error).message}`);
    }
    const dir = this.dir(id);
    try {
      mkdirSync(dir, { mode: 0o711 });
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') throw new PierError(`container with id exists: ${id}`);
      throw new PierError(`cannot create container state dir ${dir}: ${(err as Error).message}`);
    }
    return dir;
  }

  save(rec: ContainerRecord): void {
    writeFileAtomic(join(this.dir(rec.id), 'state.json'), JSON.stringify(rec));
  }

  /** Load a record or throw the phrase callers match on: `container "x" does not exist`. */
  load(id: string): ContainerRecord {
    const rec = this.tryLoad(id);
    if (!rec) throw new PierError(`container "${id}" does not exist`);
    return rec;
  }

  tryLoad(id: string): ContainerRecord | undefined {
    if (!id || id.includes('/') || id === '.' || id === '..') return undefined;
    try {
      return JSON.parse(readFileSync(join(this.dir(id), 'state.json'), 'utf8')) as ContainerRecord;
    } catch {
      return undefined;
    }
  }

  exists(id: string): boolean {
    return existsSync(this.dir(id));
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  ids(): string[] {
    try {
      return readdirSync(this.root).filter((n) => !n.startsWith('.') && statSync(join(this.root, n)).isDirectory());
    } catch {
      return [];
    }
  }

  status(rec: ContainerRecord): Status {
    if (rec.phase === 'creating') {
      return rec.pid > 0 && isProcessAlive(rec.pid, rec.startTime) ? 'creating' : 'stopped';
    }
    if (!isProcessAlive(rec.pid, rec.startTime)) return 'stopped';
    if (rec.cgroup) {
      try {
        if (cgroupFromRecord(rec.cgroup).frozen()) return 'paused';
      } catch { /* no freezer: cannot be paused */ }
    }
    if (existsSync(this.fifo(rec.id))) return 'created';
    return 'running';
  }

  /** The state JSON runc prints (runtime-spec fields plus rootfs/created/owner). */
  stateOf(rec: ContainerRecord): State {
    const status = this.status(rec);
    const s: State = {
      ociVersion: STATE_OCI_VERSION,
      id: rec.id,
      pid: status === 'stopped' ? 0 : rec.pid,
      status,
      bundle: rec.bundle,
      rootfs: rec.rootfs,
      created: rec.created,
      owner: rec.owner,
    };
    if (rec.annotations && Object.keys(rec.annotations).length) s.annotations = rec.annotations;
    return s;
  }
}
