/**
 * `pier cp` in pierd: stat, read (GET archive) and write (PUT archive) paths of a container's
 * filesystem, running or not. Everything goes through the container's Scope (Engine.scope): each
 * path component is opened from an fd anchored in the container's root or in one of its volumes,
 * symlinks are resolved as the container would see them, and what is read or written is a node
 * opened by one name in its directory's fd. A container swapping a directory for a symlink while
 * a copy runs can change what the copy sees inside the container, never reach the host
 * (CVE-2018-15664: docker cp resolved the path once into a host path and used that).
 */
import { closeSync, fstatSync, readlinkSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { PierError, errnoOf, messageOf } from '../../common/errors.ts';
import { at, lstatAt, type Scope } from '../../common/rooted.ts';
import { applyLayerAt, archivePath } from '../../image/index.ts';
import type { Engine } from './engine.ts';
import { ApiError } from './errors.ts';

export interface PathStat {
  exists: boolean;
  dir: boolean;
  size: number;
  mode: number;
  /** The path's own symlink target, when the path is a symlink (docker's linkTarget). */
  linkTarget?: string;
}

function checkPath(path: string | null, what: string): string {
  if (!path) throw new PierError(`${what}: give path`);
  if (!path.startsWith('/')) throw new PierError(`container path ${JSON.stringify(path)} must be absolute`);
  if (path.includes('\0')) throw new PierError('container path has a NUL byte');
  return path;
}

function withScope<T>(engine: Engine, ref: string, fn: (scope: Scope) => Promise<T> | T): Promise<T> {
  const scope = engine.scope(ref);
  return Promise.resolve().then(() => fn(scope)).finally(() => scope.close());
}

/** What is at `path` (followed, as a copy into it would see it). */
export function statPath(engine: Engine, ref: string, rawPath: string | null): Promise<PathStat> {
  const path = checkPath(rawPath, 'stat');
  return withScope(engine, ref, (scope) => {
    const none: PathStat = { exists: false, dir: false, size: 0, mode: 0 };
    let linkTarget: string | undefined;
    try {
      const own = scope.resolve(path);
      try {
        const st = own.name === '' ? undefined : lstatAt(own.dir.fd, own.name);
        if (st?.isSymbolicLink()) linkTarget = readlinkSync(at(own.dir.fd, own.name));
      } finally {
        closeSync(own.dir.fd);
      }
      const r = scope.resolve(path, { followLast: true });
      try {
        const st = r.name === '' ? fstatSync(r.dir.fd) : lstatAt(r.dir.fd, r.name);
        if (!st) return none;
        return { exists: true, dir: st.isDirectory(), size: st.size, mode: st.mode, ...(linkTarget !== undefined ? { linkTarget } : {}) };
      } finally {
        closeSync(r.dir.fd);
      }
    } catch (err) {
      if (['ENOENT', 'ENOTDIR', 'ELOOP'].includes(errnoOf(err) ?? '')) return none;
      throw err;
    }
  });
}

/** GET /containers/:ref/archive?path=P[&follow=1]: a tar of P (a symlink as a symlink, unless followed). */
export async function archiveOut(engine: Engine, ref: string, rawPath: string | null, follow: boolean, res: ServerResponse): Promise<void> {
  const path = checkPath(rawPath, 'archive');
  const scope = engine.scope(ref);
  let tar;
  try {
    tar = archivePath(scope, path, { followLink: follow });
  } catch (err) {
    scope.close();
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ApiError(404, `no such file or directory in container: ${path}`);
    if (code === 'ELOOP') throw new PierError(`${path}: too many levels of symbolic links`);
    throw err;
  }
  res.writeHead(200, { 'content-type': 'application/x-tar' });
  try {
    await pipeline(tar, res);
  } catch (err) {
    // Headers are out: the client sees a cut stream (and its tar an error); say why in pierd's log.
    if (!res.destroyed) engine.log.warn(`cp from ${ref}:${path}: ${messageOf(err)}`);
    res.destroy();
  } finally {
    scope.close();
  }
}

/** PUT /containers/:ref/archive?path=DIR: unpack the body (a tar) into the directory DIR. */
export function archiveIn(engine: Engine, ref: string, rawPath: string | null, req: IncomingMessage): Promise<void> {
  const path = checkPath(rawPath, 'archive');
  return withScope(engine, ref, async (scope) => {
    let dir;
    try {
      dir = scope.openDir(path);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') throw new ApiError(404, `destination directory does not exist in container: ${path}`);
      if (code === 'ENOTDIR') throw new PierError(`destination ${path} in the container is not a directory`);
      if (code === 'ELOOP') throw new PierError(`${path}: too many levels of symbolic links`);
      throw err;
    }
    try {
      // 'plain': a user's files are files (no whiteouts); entries cannot climb above DIR, and
      // symlinks on their way resolve inside the container.
      await applyLayerAt(req, scope, dir, { format: 'plain' });
    } finally {
      closeSync(dir.fd);
    }
  });
}
