/**
 * Where a running process's memory cgroup counts OOM kills: v1 memory.oom_control (`oom_kill`) or
 * v2 memory.events (`oom_kill`). For callers that supervise a container run by another runtime
 * (the engine's shim under runc), found from /proc/<pid>/cgroup while the process lives.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { parseCgroupMounts, parseSelfCgroup, readMountinfo } from './mountinfo.ts';

export interface OomCounter { path: string; key: string }

export function oomCounterOf(pid: number): OomCounter | undefined {
  try {
    const self = parseSelfCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
    const mounts = parseCgroupMounts(readMountinfo());
    const v1 = mounts.find((m) => m.type === 'cgroup' && m.controllers.includes('memory'));
    if (v1) {
      const e = self.find((x) => x.controllers.includes('memory'));
      return e ? { path: posix.join(v1.mountPoint, e.path, 'memory.oom_control'), key: 'oom_kill' } : undefined;
    }
    const v2 = mounts.find((m) => m.type === 'cgroup2');
    const e = self.find((x) => x.id === '0');
    return v2 && e ? { path: posix.join(v2.mountPoint, e.path, 'memory.events'), key: 'oom_kill' } : undefined;
  } catch {
    return undefined;
  }
}

/** The counter's value now (0 when unreadable, e.g. the cgroup is gone). */
export function readOomCounter(c: OomCounter | undefined): number {
  if (!c) return 0;
  try {
    const m = new RegExp(`^${c.key} (\\d+)$`, 'm').exec(readFileSync(c.path, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
