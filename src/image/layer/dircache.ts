/**
 * dircache: the directories an unpack writes into, as fds, by their path relative to the unpack's
 * base. A layer touches the same few directories thousands of times, so resolving each one through
 * the scope (one openat per component) once and keeping the fd is what makes fd-anchored unpacking
 * as fast as the path strings it replaced. Entries are reference-counted because file writes run
 * asynchronously with their directory's fd; at most MAX_IDLE unreferenced fds stay open (LRU).
 *
 * A cached fd keeps naming the same directory even if whoever controls the tree renames it: it then
 * writes where that directory now is — still inside the scope, which is the property that matters.
 */
import { closeSync, fstatSync } from 'node:fs';
import { PierError, errnoOf, messageOf } from '../../common/errors.ts';
import type { Dir, Scope } from '../../common/rooted.ts';

const MAX_IDLE = 256;

export interface HeldDir {
  readonly fd: number;
  /** dev:ino of the directory: the same directory reached by two names has one id. */
  readonly id: string;
  readonly path: string;
  refs: number;
  /** Dropped from the cache while referenced: closed on its last release. */
  stale: boolean;
}

export class DirCache {
  private readonly scope: Scope;
  private readonly base: Dir;
  private readonly map = new Map<string, HeldDir>();

  /** `base` stays the caller's: the cache never closes it. */
  constructor(scope: Scope, base: Dir) {
    this.scope = scope;
    this.base = base;
    const st = fstatSync(base.fd);
    this.map.set('', { fd: base.fd, id: `${st.dev}:${st.ino}`, path: base.path, refs: 1, stale: false });
  }

  /**
   * The directory at `rel` (relative to the base; symlinks on the way resolved inside the scope),
   * made with its missing parents when `create`; undefined when it does not exist and `create` is
   * off. Release it when done.
   */
  acquire(rel: string, entry: string, create: boolean): HeldDir | undefined {
    const hit = this.map.get(rel);
    if (hit) {
      hit.refs++;
      if (rel !== '') { this.map.delete(rel); this.map.set(rel, hit); }
      return hit;
    }
    let dir: Dir;
    try {
      dir = this.scope.openDir(rel, { create, base: this.base });
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' && !create) return undefined;
      if (code === 'ENOTDIR') throw new PierError(`layer entry "${entry}": ${(err as NodeJS.ErrnoException).path ?? rel} is not a directory`);
      if (code === 'ELOOP') throw new PierError(`layer entry "${entry}": too many levels of symbolic links`);
      throw new PierError(`layer entry "${entry}": ${messageOf(err)}`, { cause: err });
    }
    const st = fstatSync(dir.fd);
    const held: HeldDir = { fd: dir.fd, id: `${st.dev}:${st.ino}`, path: dir.path, refs: 1, stale: false };
    this.map.set(rel, held);
    this.trim();
    return held;
  }

  release(h: HeldDir): void {
    h.refs--;
    if (h.refs === 0 && h.stale) closeSync(h.fd);
  }

  /** Forget every resolution (after a directory or symlink was removed: names may now lead elsewhere). */
  clear(): void {
    for (const [rel, h] of this.map) {
      if (rel === '') continue;
      this.map.delete(rel);
      if (h.refs === 0) closeSync(h.fd);
      else h.stale = true;
    }
  }

  /** Close everything not in use (the base excepted); call when the unpack is over. */
  close(): void {
    this.clear();
  }

  private trim(): void {
    if (this.map.size <= MAX_IDLE) return;
    for (const [rel, h] of this.map) {
      if (this.map.size <= MAX_IDLE) break;
      if (rel === '' || h.refs > 0) continue;
      this.map.delete(rel);
      closeSync(h.fd);
    }
  }
}
