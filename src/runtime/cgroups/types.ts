/** Types shared by the cgroup manager and its controllers (re-exported from index.ts). */
export type CgroupMode = 'v1' | 'v2' | 'hybrid';

export interface CgroupStats {
  memory?: { usage: number; maxUsage?: number; limit?: number; failcnt?: number; oomEvents: number; oomKills: number };
  pids?: { current: number; limit?: number };
  cpu?: { usageNs: number; throttledPeriods?: number; throttledTimeNs?: number };
}

/** One hierarchy the container's cgroup lives in. */
export interface HierarchyRecord {
  /** filesystem type of the mount */
  type: 'cgroup' | 'cgroup2';
  /** v1: the mount's controllers incl. "name=…" entries; v2: the controllers cgroup.controllers offered at creation */
  controllers: string[];
  /** where the hierarchy is mounted on the host */
  mountPoint: string;
  /** the container's cgroup directory (absolute) */
  path: string;
}

/** JSON-serialisable; stored in the container state so later commands reopen the same cgroup. */
export interface CgroupRecord {
  mode: CgroupMode;
  hierarchies: HierarchyRecord[];
}

export interface MountSource {
  name: string;
  hostPath: string;
  fstype: 'cgroup' | 'cgroup2';
  options: string;
}
