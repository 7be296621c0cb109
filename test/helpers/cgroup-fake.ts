/**
 * A fake cgroup "kernel" over a temp dir, for the cgroup unit tests: mkdir populates control files
 * the way cgroupfs does, writes never create files, subtree_control/freeze/memsw behave like the
 * kernel in the ways the manager relies on, and every write is logged in order.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import type { CgroupFs } from '../../src/runtime/cgroups/index.ts';

const UNLIMITED = '9223372036854771712';

const V1_FILES: Record<string, Record<string, string>> = {
  memory: {
    'memory.limit_in_bytes': UNLIMITED,
    'memory.memsw.limit_in_bytes': UNLIMITED,
    'memory.soft_limit_in_bytes': UNLIMITED,
    'memory.kmem.limit_in_bytes': UNLIMITED,
    'memory.swappiness': '60',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
    'memory.usage_in_bytes': '0',
    'memory.max_usage_in_bytes': '0',
    'memory.failcnt': '0',
  },
  cpu: {
    'cpu.shares': '1024',
    'cpu.cfs_period_us': '100000',
    'cpu.cfs_quota_us': '-1',
    'cpu.cfs_burst_us': '0',
    'cpu.rt_period_us': '1000000',
    'cpu.rt_runtime_us': '0',
    'cpu.idle': '0',
    'cpu.stat': 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\n',
  },
  cpuacct: { 'cpuacct.usage': '0' },
  cpuset: { 'cpuset.cpus': '', 'cpuset.mems': '' },
  pids: { 'pids.max': 'max', 'pids.current': '0' },
  devices: { 'devices.allow': '', 'devices.deny': '', 'devices.list': 'a *:* rwm' },
  freezer: { 'freezer.state': 'THAWED' },
  blkio: {
    'blkio.weight': '500',
    'blkio.weight_device': '',
    'blkio.leaf_weight': '500',
    'blkio.leaf_weight_device': '',
    'blkio.throttle.read_bps_device': '',
    'blkio.throttle.write_bps_device': '',
    'blkio.throttle.read_iops_device': '',
    'blkio.throttle.write_iops_device': '',
  },
  hugetlb: { 'hugetlb.2MB.limit_in_bytes': UNLIMITED, 'hugetlb.1GB.limit_in_bytes': UNLIMITED },
  net_cls: { 'net_cls.classid': '0' },
  net_prio: { 'net_prio.ifpriomap': '' },
};

const V2_FILES: Record<string, Record<string, string>> = {
  memory: {
    'memory.max': 'max',
    'memory.swap.max': 'max',
    'memory.low': '0',
    'memory.current': '0',
    'memory.peak': '0',
    'memory.high': 'max',
    'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n',
  },
  cpu: { 'cpu.weight': '100', 'cpu.max': 'max 100000', 'cpu.max.burst': '0', 'cpu.idle': '0', 'cpu.stat': 'usage_usec 0\nnr_throttled 0\nthrottled_usec 0\n' },
  cpuset: { 'cpuset.cpus': '', 'cpuset.mems': '' },
  pids: { 'pids.max': 'max', 'pids.current': '0' },
  io: { 'io.weight': 'default 100', 'io.max': '' },
  hugetlb: { 'hugetlb.2MB.max': 'max', 'hugetlb.1GB.max': 'max' },
};

function sysErr(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: fake kernel, ${path}`), { code });
}

export interface FakeMount {
  /** mount point relative to the fake root, e.g. "memory", "unified" */
  at: string;
  type: 'cgroup' | 'cgroup2';
  /** v1: controllers/name= options; v2: what the root's cgroup.controllers offers */
  controllers: string[];
  /** v1 controller files to leave out of new directories (e.g. memsw without swap accounting) */
  omit?: string[];
}

export class FakeKernel {
  readonly root: string;
  readonly mounts: FakeMount[];
  readonly writes: { file: string; data: string }[] = [];
  /** return an errno to make a write fail */
  failWrite: ((file: string, data: string) => string | undefined) | undefined;
  readonly fs: CgroupFs;

  constructor(mounts: FakeMount[]) {
    this.root = mkdtempSync(join(tmpdir(), 'pier-cg-'));
    this.mounts = mounts;
    for (const m of mounts) {
      const dir = join(this.root, m.at);
      mkdirSync(dir, { recursive: true });
      this.populate(m, dir, true);
    }
    const k = this;
    this.fs = {
      read: (f) => readFileSync(f, 'utf8'),
      write: (f, d) => k.write(f, d),
      exists: (p) => existsSync(p),
      mkdir: (d) => k.mkdir(d),
      rmdir: (d) => k.rmdir(d),
      subdirs: (d) => readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name),
    };
  }

  path(rel: string): string {
    return join(this.root, rel);
  }

  mountinfo(): string {
    return this.mounts
      .map((m, i) => {
        const mp = join(this.root, m.at);
        if (m.type === 'cgroup2') return `${30 + i} 20 0:${40 + i} / ${mp} rw,relatime - cgroup2 cgroup2 rw,nsdelegate`;
        return `${30 + i} 20 0:${40 + i} / ${mp} rw,nosuid,relatime shared:${i} - cgroup cgroup rw,xattr,${m.controllers.join(',')}`;
      })
      .join('\n') + '\n';
  }

  read(rel: string): string {
    return readFileSync(this.path(rel), 'utf8');
  }

  set(rel: string, data: string): void {
    writeFileSync(this.path(rel), data);
  }

  /** writes as "<path relative to the root>=<data>" */
  log(): string[] {
    return this.writes.map((w) => `${w.file}=${w.data}`);
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  private mountOf(p: string): FakeMount {
    const rel = relative(this.root, p);
    const m = this.mounts.find((x) => rel === x.at || rel.startsWith(x.at + '/'));
    if (!m) throw new Error(`fake kernel: ${p} is not in a fake hierarchy`);
    return m;
  }

  private populate(m: FakeMount, dir: string, isRoot: boolean): void {
    const files: Record<string, string> = { 'cgroup.procs': '' };
    if (m.type === 'cgroup') {
      for (const c of m.controllers) Object.assign(files, V1_FILES[c] ?? {});
      if (isRoot) {
        files['cpuset.cpus'] = '0-1';
        files['cpuset.mems'] = '0';
        delete files['freezer.state'];
      }
      for (const o of m.omit ?? []) delete files[o];
    } else {
      const offered = isRoot ? m.controllers : this.subtree(dirname(dir));
      files['cgroup.controllers'] = offered.join(' ');
      files['cgroup.subtree_control'] = '';
      if (!isRoot) {
        files['cgroup.events'] = 'populated 0\nfrozen 0\n';
        files['cgroup.freeze'] = '0';
        files['cgroup.kill'] = '';
        files['cgroup.max.depth'] = 'max';
        for (const c of offered) Object.assign(files, V2_FILES[c] ?? {});
      }
    }
    for (const [name, data] of Object.entries(files)) {
      if (!existsSync(join(dir, name))) writeFileSync(join(dir, name), data);
    }
  }

  private subtree(dir: string): string[] {
    return readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/).filter(Boolean);
  }

  private mkdir(d: string): void {
    if (existsSync(d)) throw sysErr('EEXIST', d);
    if (!existsSync(dirname(d))) throw sysErr('ENOENT', d);
    mkdirSync(d);
    this.populate(this.mountOf(d), d, false);
  }

  private rmdir(d: string): void {
    if (!existsSync(d)) throw sysErr('ENOENT', d);
    const entries = readdirSync(d, { withFileTypes: true });
    if (entries.some((e) => e.isDirectory())) throw sysErr('ENOTEMPTY', d);
    if (readFileSync(join(d, 'cgroup.procs'), 'utf8').trim() !== '') throw sysErr('EBUSY', d);
    rmSync(d, { recursive: true });
  }

  private write(f: string, data: string): void {
    if (!existsSync(f)) throw sysErr('ENOENT', f);
    const rel = relative(this.root, f);
    const injected = this.failWrite?.(rel, data);
    if (injected) throw sysErr(injected, f);
    const dir = dirname(f);
    const name = basename(f);
    const num = (s: string) => (s.trim() === '-1' ? Infinity : Number(s.trim()));
    // The kernel invariant limit <= memsw, checked on each write.
    if (name === 'memory.limit_in_bytes' && existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) {
      if (num(data) > num(readFileSync(join(dir, 'memory.memsw.limit_in_bytes'), 'utf8'))) throw sysErr('EINVAL', f);
    }
    if (name === 'memory.memsw.limit_in_bytes') {
      if (num(data) < num(readFileSync(join(dir, 'memory.limit_in_bytes'), 'utf8'))) throw sysErr('EINVAL', f);
    }
    this.writes.push({ file: rel, data });
    if (name === 'cpu.shares') {
      writeFileSync(f, String(Math.min(262144, Math.max(2, Number(data)))));
      return;
    }
    if (name === 'cgroup.subtree_control') {
      const m = /^\+(\w+)$/.exec(data);
      if (!m) throw sysErr('EINVAL', f);
      const have = this.subtree(dir);
      if (!readFileSync(join(dir, 'cgroup.controllers'), 'utf8').split(/\s+/).includes(m[1])) throw sysErr('ENOENT', f);
      if (!have.includes(m[1])) have.push(m[1]);
      writeFileSync(f, have.join(' '));
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        const child = join(dir, e.name);
        writeFileSync(join(child, 'cgroup.controllers'), have.join(' '));
        for (const [n, v] of Object.entries(V2_FILES[m[1]] ?? {})) if (!existsSync(join(child, n))) writeFileSync(join(child, n), v);
      }
      return;
    }
    if (name === 'cgroup.freeze') {
      writeFileSync(join(dir, 'cgroup.events'), `populated 0\nfrozen ${data.trim()}\n`);
    }
    if (name === 'cgroup.kill' || name === 'devices.allow' || name === 'devices.deny') return;
    writeFileSync(f, data);
  }
}

/** The mount layout of the project's machine: separate v1 mounts plus a unified tree offering only hugetlb. */
export function hybridMachine(): FakeKernel {
  return new FakeKernel([
    { at: 'cpu', type: 'cgroup', controllers: ['cpu'] },
    { at: 'cpuacct', type: 'cgroup', controllers: ['cpuacct'] },
    { at: 'cpuset', type: 'cgroup', controllers: ['cpuset'] },
    { at: 'memory', type: 'cgroup', controllers: ['memory'] },
    { at: 'devices', type: 'cgroup', controllers: ['devices'] },
    { at: 'freezer', type: 'cgroup', controllers: ['freezer'] },
    { at: 'blkio', type: 'cgroup', controllers: ['blkio'] },
    { at: 'pids', type: 'cgroup', controllers: ['pids'] },
    { at: 'systemd', type: 'cgroup', controllers: ['name=systemd'] },
    { at: 'unified', type: 'cgroup2', controllers: ['hugetlb'] },
  ]);
}

export function v1Machine(): FakeKernel {
  return new FakeKernel([
    { at: 'cpu,cpuacct', type: 'cgroup', controllers: ['cpu', 'cpuacct'] },
    { at: 'cpuset', type: 'cgroup', controllers: ['cpuset'] },
    { at: 'memory', type: 'cgroup', controllers: ['memory'] },
    { at: 'devices', type: 'cgroup', controllers: ['devices'] },
    { at: 'freezer', type: 'cgroup', controllers: ['freezer'] },
    { at: 'blkio', type: 'cgroup', controllers: ['blkio'] },
    { at: 'pids', type: 'cgroup', controllers: ['pids'] },
    { at: 'hugetlb', type: 'cgroup', controllers: ['hugetlb'] },
    { at: 'net_cls,net_prio', type: 'cgroup', controllers: ['net_cls', 'net_prio'] },
    { at: 'systemd', type: 'cgroup', controllers: ['name=systemd'] },
  ]);
}

export function v2Machine(controllers = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids']): FakeKernel {
  return new FakeKernel([{ at: 'cg2', type: 'cgroup2', controllers }]);
}

/** /proc/self/cgroup text placing the caller at `path` in every hierarchy of the fake. */
export function selfCgroup(k: FakeKernel, path = '/', overrides: Record<string, string> = {}): string {
  return k.mounts
    .map((m, i) => (m.type === 'cgroup2' ? `0::${overrides[''] ?? path}` : `${i + 1}:${m.controllers.join(',')}:${overrides[m.at] ?? path}`))
    .join('\n') + '\n';
}
