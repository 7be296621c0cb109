/**
 * Named volumes: a directory per volume under $PIER_ROOT/volumes/<name>/_data with its metadata next
 * to it (docker's "local" driver). Which container uses a volume is the engine's business; this
 * module only makes, lists and deletes them.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../../common/atomic.ts';
import { PierError, errnoOf } from '../../common/errors.ts';
import type { VolumeInfo } from '../api.ts';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export function validVolumeName(name: string): boolean {
  return NAME.test(name);
}

export class VolumeManager {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  private path(name: string): string {
    if (!NAME.test(name)) throw new PierError(`invalid volume name ${JSON.stringify(name)}: use letters, digits, "_", "." and "-"`);
    return join(this.dir, name);
  }

  /** Create (or return the existing) volume; no name → an anonymous one with a random name. */
  create(name?: string, opts: { labels?: Record<string, string> } = {}): VolumeInfo {
    const anonymous = name === undefined;
    const vname = name ?? randomBytes(32).toString('hex');
    const dir = this.path(vname);
    const existing = this.tryInspect(vname);
    if (existing) return existing;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // Made in a temp dir and renamed, so a crash never leaves a volume without its metadata.
    const tmp = join(this.dir, `.tmp-${vname}-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    // volumes/ and volumes/<name>/ are root's alone; _data is what the container sees (its mode
    // becomes the image's at copy-up). Containers reach it through their bind mount, not this path.
    mkdirSync(tmp, { mode: 0o700 });
    mkdirSync(join(tmp, '_data'), { mode: 0o755 });
    const info: VolumeInfo = { name: vname, driver: 'local', mountpoint: join(dir, '_data'), created: new Date().toISOString(), labels: opts.labels ?? {}, anonymous };
    writeFileAtomic(join(tmp, 'volume.json'), `${JSON.stringify(info)}\n`);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      if (errnoOf(err) === 'ENOTEMPTY' || errnoOf(err) === 'EEXIST') return this.inspect(vname);
      throw err;
    }
    return info;
  }

  tryInspect(name: string): VolumeInfo | undefined {
    try {
      return JSON.parse(readFileSync(join(this.path(name), 'volume.json'), 'utf8')) as VolumeInfo;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  inspect(name: string): VolumeInfo {
    const v = this.tryInspect(name);
    if (!v) throw new PierError(`volume ${JSON.stringify(name)} not found`);
    return v;
  }

  list(): VolumeInfo[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir).filter((n) => NAME.test(n)).flatMap((n) => {
      const v = this.tryInspect(n);
      return v ? [v] : [];
    }).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Delete a volume and its data; `inUse` names the containers that still mount it. */
  remove(name: string, inUse: string[] = []): void {
    this.inspect(name);
    if (inUse.length) throw new PierError(`volume ${name} is in use by container ${inUse.join(', ')}`);
    const dir = this.path(name);
    const doomed = join(this.dir, `.tmp-rm-${name}-${process.pid}`);
    renameSync(dir, doomed);
    rmSync(doomed, { recursive: true, force: true });
  }
}
