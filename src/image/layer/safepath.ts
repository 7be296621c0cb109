/**
 * safepath: where a layer entry may land. Entry names are normalised lexically; the parent components
 * are then resolved on disk inside the target, following only relative symlinks that stay inside it
 * (Debian's merged /usr: `lib -> usr/lib`). Anything else is refused before a byte is written.
 */
import { lstatSync, mkdirSync, readlinkSync } from 'node:fs';
import { PierError, errnoOf } from '../../common/errors.ts';

/** Symlinks followed while resolving one path, as Linux's own limit. */
const MAX_LINKS = 40;

export function escapes(entry: string): PierError {
  return new PierError(`layer entry "${entry}" escapes the rootfs`);
}

/**
 * `name` as a relative path without `.`, `..` or empty components ('' is the root itself).
 * Absolute names and names whose `..` climb above the root are refused.
 */
export function normalizeEntry(name: string, entry: string = name): string {
  if (name.includes('\0')) throw new PierError(`layer entry "${entry}" has a NUL byte in its name`);
  let s = name;
  while (s.startsWith('./')) s = s.slice(2);
  if (s.startsWith('/')) throw escapes(entry);
  return normalizeRel(s.split('/'), entry);
}

function normalizeRel(parts: string[], entry: string): string {
  const out: string[] = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (out.length === 0) throw escapes(entry);
      out.pop();
    } else out.push(p);
  }
  return out.join('/');
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/**
 * Resolves directories of one target tree. Results are cached (a layer touches the same few
 * directories thousands of times); whoever deletes or replaces a path must call forget().
 */
export class TreeResolver {
  readonly root: string;
  private readonly dirs = new Map<string, string>();

  constructor(root: string) {
    this.root = root;
    this.dirs.set('', '');
  }

  abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  /**
   * The on-disk relative path of directory `rel` (symlinks resolved inside the tree). Missing
   * directories are created (mode 0755, owned by the caller) when `create` is set, else the result is
   * undefined.
   */
  dir(rel: string, entry: string, create: boolean): string | undefined {
    return this.resolve(rel, entry, create, 0);
  }

  private resolve(rel: string, entry: string, create: boolean, depth: number): string | undefined {
    const hit = this.dirs.get(rel);
    if (hit !== undefined) return hit;
    const parent = this.resolve(parentOf(rel), entry, create, depth);
    if (parent === undefined) return undefined;
    const name = baseOf(rel);
    const cand = parent === '' ? name : `${parent}/${name}`;
    const abs = this.abs(cand);
    let st;
    try {
      st = lstatSync(abs);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
      if (!create) return undefined;
      mkdirSync(abs, { mode: 0o755 });
      this.dirs.set(rel, cand);
      return cand;
    }
    let out: string | undefined;
    if (st.isDirectory()) {
      out = cand;
    } else if (st.isSymbolicLink()) {
      if (depth >= MAX_LINKS) throw new PierError(`layer entry "${entry}": too many levels of symbolic links`);
      const target = readlinkSync(abs);
      if (target.startsWith('/')) throw escapes(entry);
      const lexical = normalizeRel([...(parent === '' ? [] : parent.split('/')), ...target.split('/')], entry);
      out = this.resolve(lexical, entry, create, depth + 1);
    } else {
      throw new PierError(`layer entry "${entry}": "${cand}" is not a directory`);
    }
    if (out !== undefined) this.dirs.set(rel, out);
    return out;
  }

  /** Drop cached resolutions at or below `rel` (after deleting or replacing it). */
  forget(rel: string): void {
    if (rel === '') { this.dirs.clear(); this.dirs.set('', ''); return; }
    const prefix = `${rel}/`;
    for (const [k, v] of this.dirs) {
      if (k === rel || k.startsWith(prefix) || v === rel || v.startsWith(prefix)) this.dirs.delete(k);
    }
  }

  /** Record a directory this apply made itself, so later entries skip the lstat. */
  known(rel: string, resolved: string): void {
    this.dirs.set(rel, resolved);
  }
}
