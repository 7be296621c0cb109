import { join } from 'node:path';
import { PierError, errnoOf } from '../../common/errors.ts';
import type { LinuxResources } from '../spec.ts';
import { reason, type CgroupFs } from './fs.ts';
import type { CgroupStats } from './types.ts';

/** One cgroup directory in one hierarchy, with the read/write helpers every controller uses. */
export class Dir {
  readonly path: string;
  readonly fs: CgroupFs;
  constructor(path: string, fs: CgroupFs) {
    this.path = path;
    this.fs = fs;
  }

  file(name: string): string {
    return join(this.path, name);
  }

  has(name: string): boolean {
    return this.fs.exists(this.file(name));
  }

  read(name: string): string {
    return this.fs.read(this.file(name)).trim();
  }

  /** The trimmed content, or undefined when the file does not exist (controller or feature absent). */
  readOpt(name: string): string | undefined {
    try {
      return this.read(name);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * Write `data` to a control file. `what` names the spec field ("memory limit") and `shown` the
   * value the user gave, so a failure reads `cannot set memory limit 1000: write …/memory.limit_in_bytes: invalid argument`.
   */
  set(name: string, data: string | number, what: string, shown: string | number = data): void {
    try {
      this.fs.write(this.file(name), String(data));
    } catch (err) {
      throw new PierError(`cannot set ${what} ${shown}: write ${this.file(name)}: ${reason(err)}`, { cause: err });
    }
  }

  /** Like set(), but reports the raw errno to the caller for ordering retries. */
  trySet(name: string, data: string | number): string | undefined {
    try {
      this.fs.write(this.file(name), String(data));
      return undefined;
    } catch (err) {
      return errnoOf(err) ?? 'EIO';
    }
  }

  /** Parse a flat "key value" file (memory.events, cpu.stat, oom_control) into numbers. */
  keyed(name: string): Map<string, number> | undefined {
    const text = this.readOpt(name);
    if (text === undefined) return undefined;
    return parseKeyed(text);
  }
}

export function parseKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out.set(k, Number(v));
  }
  return out;
}

/** A number read from a control file; "max" and the v1 "unlimited" page-rounded maximum become undefined. */
export function limitValue(text: string | undefined): number | undefined {
  if (text === undefined || text === 'max' || text === '') return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) return undefined;
  // v1 reports "no limit" as PAGE_COUNTER_MAX * PAGE_SIZE (≈ 2^63); anything that large is unlimited.
  if (n >= 2 ** 62) return undefined;
  return n;
}

export function intValue(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text)) return undefined;
  return Number(text);
}

/** A controller's resource handling for one cgroup version. */
export interface ControllerImpl {
  apply(dir: Dir, r: LinuxResources): void;
  stats?(dir: Dir, out: CgroupStats): void;
}

export function fail(what: string, shown: string | number, why: string): never {
  throw new PierError(`cannot set ${what} ${shown}: ${why}`);
}
