import { posix } from 'node:path';
import { PierError, errnoOf } from '../../common/errors.ts';
import type { LinuxResources } from '../spec.ts';
import { Dir, type ControllerImpl } from './dir.ts';
import { reason, sleepMs, type CgroupFs } from './fs.ts';
import { v2Controllers } from './mountinfo.ts';
import type { CgroupMode, CgroupRecord, CgroupStats, HierarchyRecord, MountSource } from './types.ts';
import { blkio } from './v1/blkio.ts';
import { cpu as cpuV1 } from './v1/cpu.ts';
import { cpuacct } from './v1/cpuacct.ts';
import { cpuset as cpusetV1, inheritCpuset } from './v1/cpuset.ts';
import { devices as devicesV1 } from './v1/devices.ts';
import { freezeV1, frozenV1, thawV1 } from './v1/freezer.ts';
import { hugetlb as hugetlbV1 } from './v1/hugetlb.ts';
import { memory as memoryV1 } from './v1/memory.ts';
import { netCls } from './v1/net_cls.ts';
import { netPrio } from './v1/net_prio.ts';
import { pids as pidsV1 } from './v1/pids.ts';
import { rdma as rdmaV1 } from './v1/rdma.ts';
import { cpu as cpuV2 } from './v2/cpu.ts';
import { cpuset as cpusetV2 } from './v2/cpuset.ts';
import { devices as devicesV2 } from './v2/devices.ts';
import { freezeV2, frozenV2, thawV2 } from './v2/freezer.ts';
import { hugetlb as hugetlbV2 } from './v2/hugetlb.ts';
import { io } from './v2/io.ts';
import { memory as memoryV2 } from './v2/memory.ts';
import { pids as pidsV2 } from './v2/pids.ts';
import { rdma as rdmaV2 } from './v2/rdma.ts';
import { applyUnified, unifiedController } from './v2/unified.ts';

export interface Cgroup {
  readonly mode: CgroupMode;
  procsFiles(): string[];
  create(resources?: LinuxResources): void;
  update(resources: LinuxResources): void;
  pids(): number[];
  freeze(): void;
  thaw(): void;
  frozen(): boolean;
  stats(): CgroupStats;
  destroy(): void;
  mountSources(): MountSource[];
  toJSON(): CgroupRecord;
}

const nz = (v: number | undefined | null): boolean => v !== undefined && v !== null && v !== 0;

/**
 * One controller: its kernel name per version, the implementation per version, and `wanted`,
 * which names the first field that asks something of it (for the "not mounted" error). Absent
 * and zero values ask nothing, so they pass on machines without the controller.
 */
interface Entry {
  v1?: string;
  v2?: string;
  impl1?: ControllerImpl;
  impl2?: ControllerImpl;
  wanted(r: LinuxResources): string | undefined;
}

const ENTRIES: Entry[] = [
  {
    v1: 'cpuset', v2: 'cpuset', impl1: cpusetV1, impl2: cpusetV2,
    wanted: (r) => (r.cpu?.cpus ? `cpu cpus ${r.cpu.cpus}` : r.cpu?.mems ? `cpu mems ${r.cpu.mems}` : undefined),
  },
  {
    v1: 'memory', v2: 'memory', impl1: memoryV1, impl2: memoryV2,
    wanted(r) {
      const m = r.memory;
      if (!m) return undefined;
      if (nz(m.limit)) return `memory limit ${m.limit}`;
      if (nz(m.swap)) return `memory swap ${m.swap}`;
      if (nz(m.reservation)) return `memory reservation ${m.reservation}`;
      if (nz(m.kernel)) return `kernel memory limit ${m.kernel}`;
      if (nz(m.kernelTCP)) return `kernel TCP memory limit ${m.kernelTCP}`;
      if (nz(m.swappiness)) return `memory swappiness ${m.swappiness}`;
      if (m.disableOOMKiller === true) return 'memory disableOOMKiller true';
      return undefined;
    },
  },
  {
    v1: 'cpu', v2: 'cpu', impl1: cpuV1, impl2: cpuV2,
    wanted(r) {
      const c = r.cpu;
      if (!c) return undefined;
      for (const k of ['shares', 'quota', 'period', 'burst', 'realtimeRuntime', 'realtimePeriod', 'idle'] as const) {
        if (nz(c[k])) return `cpu ${k} ${c[k]}`;
      }
      return undefined;
    },
  },
  { v1: 'cpuacct', impl1: cpuacct, wanted: () => undefined },
  {
    v1: 'pids', v2: 'pids', impl1: pidsV1, impl2: pidsV2,
    wanted: (r) => (r.pids && r.pids.limit > 0 ? `pids limit ${r.pids.limit}` : undefined),
  },
  {
    v1: 'blkio', v2: 'io', impl1: blkio, impl2: io,
    wanted(r) {
      const b = r.blockIO;
      if (!b) return undefined;
      if (nz(b.weight)) return `blockIO weight ${b.weight}`;
      if (nz(b.leafWeight)) return `blockIO leafWeight ${b.leafWeight}`;
      for (const k of ['weightDevice', 'throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice'] as const) {
        if ((b[k]?.length ?? 0) > 0) return `blockIO ${k}`;
      }
      return undefined;
    },
  },
  {
    v1: 'hugetlb', v2: 'hugetlb', impl1: hugetlbV1, impl2: hugetlbV2,
    wanted: (r) => {
      const h = r.hugepageLimits?.[0];
      return h ? `hugepage limit ${h.pageSize} ${h.limit}` : undefined;
    },
  },
  { v1: 'net_cls', impl1: netCls, wanted: (r) => (nz(r.network?.classID) ? `network classID ${r.network!.classID}` : undefined) },
  {
    v1: 'net_prio', impl1: netPrio,
    wanted: (r) => (r.network?.priorities?.length ? `network priority for ${r.network.priorities[0].name}` : undefined),
  },
  {
    v1: 'rdma', v2: 'rdma', impl1: rdmaV1, impl2: rdmaV2,
    wanted: (r) => (r.rdma && Object.keys(r.rdma).length > 0 ? `rdma limit for ${Object.keys(r.rdma)[0]}` : undefined),
  },
  // Last: deny-all followed by the allow list should not race other writes.
  { v1: 'devices', impl1: devicesV1, wanted: (r) => (r.devices?.length ? 'device rules' : undefined) },
];

const DESTROY_TIMEOUT_MS = 3000;

export class CgroupImpl implements Cgroup {
  readonly mode: CgroupMode;
  readonly hierarchies: readonly HierarchyRecord[];
  readonly fs: CgroupFs;

  constructor(mode: CgroupMode, hierarchies: HierarchyRecord[], fs: CgroupFs) {
    this.mode = mode;
    this.hierarchies = hierarchies;
    this.fs = fs;
  }

  procsFiles(): string[] {
    return this.hierarchies.map((h) => posix.join(h.path, 'cgroup.procs'));
  }

  create(resources?: LinuxResources): void {
    const made: string[] = [];
    try {
      for (const h of this.hierarchies) {
        if (h.type === 'cgroup2' && this.mode === 'v2') this.enableAll(h);
        const first = this.mkdirP(h);
        if (first) made.push(first);
        if (h.type === 'cgroup' && h.controllers.includes('cpuset')) inheritCpuset(this.fs, h.mountPoint, h.path);
      }
      if (resources) this.apply(resources);
    } catch (err) {
      // Undo only what this call created; a directory that was there before is left alone.
      for (const dir of made.reverse()) {
        try {
          this.removeTree(dir);
        } catch {
          // The original error is the one worth reporting.
        }
      }
      if (err instanceof PierError) throw err;
      throw new PierError(`cannot create cgroup: ${reason(err)}`, { cause: err });
    }
  }

  update(resources: LinuxResources): void {
    for (const h of this.hierarchies) {
      if (!this.fs.exists(h.path)) throw new PierError(`cannot update cgroup: ${h.path} does not exist`);
    }
    this.apply(resources);
  }

  pids(): number[] {
    const seen = new Set<number>();
    const walk = (dir: string): void => {
      let text: string;
      try {
        text = this.fs.read(posix.join(dir, 'cgroup.procs'));
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENODEV') return;
        throw new PierError(`cannot read ${posix.join(dir, 'cgroup.procs')}: ${reason(err)}`, { cause: err });
      }
      for (const line of text.split('\n')) if (/^\d+$/.test(line.trim())) seen.add(Number(line.trim()));
      let subs: string[] = [];
      try {
        subs = this.fs.subdirs(dir);
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw err;
      }
      for (const s of subs) walk(posix.join(dir, s));
    };
    for (const h of this.hierarchies) walk(h.path);
    return [...seen].sort((a, b) => a - b);
  }

  freeze(): void {
    const f = this.freezer();
    if (f.v1) freezeV1(f.dir);
    else freezeV2(f.dir);
  }

  thaw(): void {
    const f = this.freezer();
    if (f.v1) thawV1(f.dir);
    else thawV2(f.dir);
  }

  frozen(): boolean {
    const f = this.freezerOpt();
    if (!f) return false;
    return f.v1 ? frozenV1(f.dir) : frozenV2(f.dir);
  }

  stats(): CgroupStats {
    const out: CgroupStats = {};
    for (const e of ENTRIES) {
      const t = this.locate(e);
      if (t?.impl.stats) t.impl.stats(t.dir, out);
    }
    // v1 cpu.stat has no usage; without cpuacct there is no CPU time to report.
    if (out.cpu && !Number.isFinite(out.cpu.usageNs)) delete out.cpu;
    return out;
  }

  destroy(): void {
    const deadline = Date.now() + DESTROY_TIMEOUT_MS;
    let delay = 5;
    for (;;) {
      this.killAll();
      let busy: { dir: string; err: unknown } | undefined;
      for (const h of this.hierarchies) {
        try {
          this.removeTree(h.path);
        } catch (err) {
          if (errnoOf(err) !== 'EBUSY') throw new PierError(`cannot remove cgroup ${h.path}: ${reason(err)}`, { cause: err });
          busy ??= { dir: h.path, err };
        }
      }
      if (!busy) return;
      if (Date.now() > deadline) {
        const left = this.pids();
        throw new PierError(
          `cannot remove cgroup ${busy.dir}: ${reason(busy.err)}` + (left.length ? ` (processes left: ${left.join(' ')})` : ''),
          { cause: busy.err },
        );
      }
      sleepMs(delay);
      delay = Math.min(delay * 2, 100);
    }
  }

  mountSources(): MountSource[] {
    return this.hierarchies.map((h) => {
      if (h.type === 'cgroup2') {
        return { name: this.mode === 'v2' ? '' : 'unified', hostPath: h.path, fstype: 'cgroup2', options: '' };
      }
      const name = h.controllers.map((c) => (c.startsWith('name=') ? c.slice(5) : c)).join(',');
      // A named hierarchy without controllers needs "none" so the kernel does not bind every free controller.
      const named = h.controllers.every((c) => c.startsWith('name='));
      return { name, hostPath: h.path, fstype: 'cgroup', options: (named ? 'none,' : '') + h.controllers.join(',') };
    });
  }

  toJSON(): CgroupRecord {
    return { mode: this.mode, hierarchies: this.hierarchies.map((h) => ({ ...h, controllers: [...h.controllers] })) };
  }

  // ---- internals ----

  private unifiedHier(): HierarchyRecord | undefined {
    return this.hierarchies.find((h) => h.type === 'cgroup2');
  }

  /** Which hierarchy and implementation serve a controller: v1 if mounted there, else the unified tree if it offers it. */
  private locate(e: Entry): { dir: Dir; impl: ControllerImpl; hier: HierarchyRecord; v2: string | undefined } | undefined {
    if (e.v1 && e.impl1 && this.mode !== 'v2') {
      const h = this.hierarchies.find((x) => x.type === 'cgroup' && x.controllers.includes(e.v1!));
      if (h) return { dir: new Dir(h.path, this.fs), impl: e.impl1, hier: h, v2: undefined };
    }
    const u = this.unifiedHier();
    if (e.v2 && e.impl2 && u && v2Controllers(this.fs, u.mountPoint).includes(e.v2)) {
      return { dir: new Dir(u.path, this.fs), impl: e.impl2, hier: u, v2: e.v2 };
    }
    return undefined;
  }

  private apply(r: LinuxResources): void {
    for (const e of ENTRIES) {
      const want = e.wanted(r);
      if (e.v1 === 'devices' && this.mode === 'v2') {
        devicesV2.apply(new Dir(this.unifiedHier()!.path, this.fs), r);
        continue;
      }
      const t = this.locate(e);
      if (!t) {
        if (want) throw new PierError(`cannot set ${want}: the ${e.v1 ?? e.v2} cgroup controller is not mounted`);
        continue;
      }
      if (t.v2) {
        // A v2 controller's files only appear once every ancestor enables it in cgroup.subtree_control.
        if (want) this.enable(t.hier, t.v2);
        else if (!this.enabled(t.hier, t.v2)) continue;
      }
      t.impl.apply(t.dir, r);
    }
    this.applyUnifiedMap(r.unified);
  }

  private applyUnifiedMap(map: Record<string, string> | undefined): void {
    const keys = Object.keys(map ?? {});
    if (!map || keys.length === 0) return;
    const u = this.unifiedHier();
    if (!u) throw new PierError(`cannot set unified ${keys[0]} ${JSON.stringify(map[keys[0]])}: cgroup v2 is not mounted`);
    const available = v2Controllers(this.fs, u.mountPoint);
    for (const key of keys) {
      const ctl = unifiedController(key, map[key]);
      if (ctl === 'cgroup') continue;
      if (!available.includes(ctl)) {
        const why = this.mode === 'hybrid' ? ' (hybrid mode: it is bound to a v1 hierarchy)' : '';
        throw new PierError(
          `cannot set unified ${key} ${JSON.stringify(map[key])}: the ${ctl} controller is not available in ${u.mountPoint}${why}`,
        );
      }
      this.enable(u, ctl);
    }
    applyUnified(new Dir(u.path, this.fs), map);
  }

  /** The directories from the mount point down to the container's parent. */
  private ancestors(h: HierarchyRecord): string[] {
    const rel = posix.relative(h.mountPoint, posix.dirname(h.path));
    const out = [h.mountPoint];
    if (rel === '' || rel.startsWith('..')) return out;
    let cur = h.mountPoint;
    for (const part of rel.split('/')) out.push((cur = posix.join(cur, part)));
    return out;
  }

  private subtree(dir: string): string[] {
    try {
      return this.fs.read(posix.join(dir, 'cgroup.subtree_control')).trim().split(/\s+/).filter(Boolean);
    } catch {
      return [];
    }
  }

  private enabled(h: HierarchyRecord, ctl: string): boolean {
    return this.subtree(posix.dirname(h.path)).includes(ctl);
  }

  private enable(h: HierarchyRecord, ctl: string): void {
    for (const dir of this.ancestors(h)) {
      if (this.subtree(dir).includes(ctl)) continue;
      const file = posix.join(dir, 'cgroup.subtree_control');
      try {
        this.fs.write(file, `+${ctl}`);
      } catch (err) {
        throw new PierError(`cannot enable the ${ctl} controller: write +${ctl} to ${file}: ${reason(err)}`, { cause: err });
      }
    }
  }

  /** Pure v2: offer every available controller to the container, as runc does; failures are left to the writes that need them. */
  private enableAll(h: HierarchyRecord): void {
    for (const ctl of v2Controllers(this.fs, h.mountPoint)) {
      try {
        this.enable(h, ctl);
      } catch {
        // e.g. a threaded or populated ancestor; only resources that use ctl will fail.
      }
    }
  }

  /** mkdir -p; returns the top-most directory this call created. */
  private mkdirP(h: HierarchyRecord): string | undefined {
    const rel = posix.relative(h.mountPoint, h.path);
    let cur = h.mountPoint;
    let first: string | undefined;
    for (const part of rel.split('/')) {
      cur = posix.join(cur, part);
      if (this.fs.exists(cur)) continue;
      try {
        this.fs.mkdir(cur);
        first ??= cur;
      } catch (err) {
        if (errnoOf(err) === 'EEXIST') continue;
        throw new PierError(`cannot create cgroup ${cur}: ${reason(err)}`, { cause: err });
      }
    }
    return first;
  }

  /** rmdir children first; a missing directory is fine. Throws the raw error (EBUSY while tasks remain). */
  private removeTree(dir: string): void {
    let subs: string[];
    try {
      subs = this.fs.subdirs(dir);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
      throw err;
    }
    for (const s of subs) this.removeTree(posix.join(dir, s));
    try {
      this.fs.rmdir(dir);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
  }

  private killAll(): void {
    const pids = this.pids().filter((p) => p !== process.pid);
    if (pids.length === 0) return;
    const u = this.unifiedHier();
    const killFile = u && this.mode === 'v2' ? posix.join(u.path, 'cgroup.kill') : undefined;
    if (killFile && this.fs.exists(killFile)) {
      try {
        this.fs.write(killFile, '1');
        return;
      } catch {
        // fall back to signalling each pid
      }
    }
    // Frozen tasks cannot fork between our reading the pid list and the signal; v1 frozen tasks
    // only die once thawed, hence thaw afterwards.
    const f = this.freezerOpt();
    let froze = false;
    if (f?.v1) {
      try {
        freezeV1(f.dir);
        froze = true;
      } catch {
        // killing unfrozen is still better than not killing
      }
    }
    for (const pid of this.pids().filter((p) => p !== process.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone (ESRCH)
      }
    }
    if (froze || (f?.v1 && frozenV1(f.dir))) {
      try {
        thawV1(f!.dir);
      } catch {
        // the directory may be gone already
      }
    }
    if (f && !f.v1 && frozenV2(f.dir)) {
      try {
        thawV2(f.dir);
      } catch {
        // as above
      }
    }
  }

  private freezerOpt(): { v1: boolean; dir: Dir } | undefined {
    const v1 = this.hierarchies.find((h) => h.type === 'cgroup' && h.controllers.includes('freezer'));
    if (v1) return { v1: true, dir: new Dir(v1.path, this.fs) };
    const u = this.unifiedHier();
    // cgroup.freeze is a core v2 file (no controller to enable), present in every non-root cgroup.
    if (u && this.fs.exists(posix.join(u.path, 'cgroup.freeze'))) return { v1: false, dir: new Dir(u.path, this.fs) };
    return undefined;
  }

  private freezer(): { v1: boolean; dir: Dir } {
    const f = this.freezerOpt();
    if (!f) throw new PierError('cannot freeze or thaw the container: no freezer cgroup controller is mounted and no cgroup.freeze exists');
    return f;
  }
}
