/**
 * A cross-process lock file: created with O_EXCL and holding the owner's pid. A lock whose pid is
 * gone (a crashed pier) is stale and is taken over; waiters poll with a short backoff.
 */
import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PierError, errnoOf } from '../../common/errors.ts';

export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}

/** In-process holders, so two async callers in one process queue instead of both seeing "our pid". */
const local = new Map<string, Promise<void>>();

function tryCreate(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return false;
    throw err;
  }
  try { writeSync(fd, `${process.pid}\n`); } finally { closeSync(fd); }
  return true;
}

/** Remove the lock at `path` if its owner is dead; true when it was removed (or already gone). */
function breakIfStale(path: string): boolean {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return true;
    throw err;
  }
  const pid = Number(text.trim());
  // An empty file is a lock being written right now: leave it to its owner.
  if (text === '' || pidAlive(pid)) return false;
  // Rename first so two breakers cannot both remove a lock one of them just re-created.
  const aside = `${path}.stale.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return true;
    throw err;
  }
  const again = (() => { try { return readFileSync(aside, 'utf8'); } catch { return ''; } })();
  if (again !== text) {
    // We moved a fresh lock taken between our read and rename: put it back.
    try { renameSync(aside, path); } catch { /* its owner will notice nothing: the path is free again */ }
    return false;
  }
  try { unlinkSync(aside); } catch { /* gone */ }
  return true;
}

export async function withLock<T>(path: string, fn: () => Promise<T> | T, opts: { timeoutMs?: number } = {}): Promise<T> {
  // Serialise within this process first.
  const prev = local.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => { release = r; });
  const chained = prev.then(() => mine);
  local.set(path, chained);
  await prev;
  try {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    let delay = 2;
    while (!tryCreate(path)) {
      if (breakIfStale(path)) continue;
      if (Date.now() > deadline) throw new PierError(`timed out waiting for lock ${path} (held by another pier process)`);
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
    try {
      return await fn();
    } finally {
      try { unlinkSync(path); } catch { /* already gone */ }
    }
  } finally {
    release();
    if (local.get(path) === chained) local.delete(path);
  }
}
