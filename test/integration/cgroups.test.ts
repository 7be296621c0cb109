/**
 * The cgroup manager against the real kernel (root only): limits land in the files, a process
 * can be moved in, counted, frozen and thawed, and destroy leaves nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectMode, openCgroup, type Cgroup } from '../../src/runtime/cgroups/index.ts';

const skip = process.getuid?.() !== 0 ? 'needs root' : false;

function dirOf(cg: Cgroup, controller: string): string | undefined {
  return cg.toJSON().hierarchies.find((h) => h.controllers.includes(controller))?.path;
}

function read(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8').trim();
}

function procState(pid: number): string {
  const m = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? m[1] : '?';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return procState(pid) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * A shell forking short sleeps (so new memory and CPU time are charged to its new cgroup), not our
 * child (its parent shell exits), so our synchronous code never has to reap it.
 */
function orphanLoop(): number {
  const script = 'sh -c "while :; do sleep 0.05; done" </dev/null >/dev/null 2>&1 & echo $!';
  return Number(execFileSync('sh', ['-c', script], { encoding: 'utf8' }).trim());
}

function waitFor(cond: () => boolean, ms: number): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  return cond();
}

test('real cgroup: limits, join, pids, stats, freeze/thaw, destroy', { skip }, () => {
  const id = `pier-it-${process.pid}`;
  const cg = openCgroup({ id });
  assert.equal(cg.mode, detectMode());
  let pid = 0;
  try {
    // Relative (default) path: under our own memory cgroup, not the mount root.
    const own = /^\d+:memory:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'));
    const mem = dirOf(cg, 'memory')!;
    if (own) assert.ok(mem.endsWith(`${own[1] === '/' ? '' : own[1]}/${id}`), mem);

    cg.create({
      memory: { limit: 64 << 20, swap: 128 << 20 },
      pids: { limit: 20 },
      cpu: { shares: 256, quota: 50000, period: 100000 },
    });
    for (const f of cg.procsFiles()) assert.ok(existsSync(f), f);
    if (cg.mode !== 'v2') {
      assert.equal(read(mem, 'memory.limit_in_bytes'), String(64 << 20));
      if (existsSync(join(mem, 'memory.memsw.limit_in_bytes'))) assert.equal(read(mem, 'memory.memsw.limit_in_bytes'), String(128 << 20));
      assert.equal(read(dirOf(cg, 'pids')!, 'pids.max'), '20');
      assert.equal(read(dirOf(cg, 'cpu')!, 'cpu.shares'), '256');
      assert.equal(read(dirOf(cg, 'cpu')!, 'cpu.cfs_quota_us'), '50000');
      assert.equal(read(dirOf(cg, 'cpu')!, 'cpu.cfs_period_us'), '100000');
      // cpuset inherited so tasks can join
      const cs = dirOf(cg, 'cpuset');
      if (cs) assert.notEqual(read(cs, 'cpuset.cpus'), '');
    } else {
      const d = cg.toJSON().hierarchies[0].path;
      assert.equal(read(d, 'memory.max'), String(64 << 20));
      assert.equal(read(d, 'pids.max'), '20');
      assert.equal(read(d, 'cpu.max'), '50000 100000');
    }

    if (cg.mode !== 'v2' && existsSync(join(mem, 'memory.memsw.limit_in_bytes'))) {
      // Both directions of the limit/memsw ordering, as the kernel enforces it.
      cg.update({ memory: { limit: 256 << 20, swap: 512 << 20 } });
      assert.deepEqual([read(mem, 'memory.limit_in_bytes'), read(mem, 'memory.memsw.limit_in_bytes')], [String(256 << 20), String(512 << 20)]);
      cg.update({ memory: { limit: 64 << 20, swap: 96 << 20 } });
      assert.deepEqual([read(mem, 'memory.limit_in_bytes'), read(mem, 'memory.memsw.limit_in_bytes')], [String(64 << 20), String(96 << 20)]);
    }

    pid = orphanLoop();
    for (const f of cg.procsFiles()) writeFileSync(f, String(pid));
    assert.ok(cg.pids().includes(pid));
    assert.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`/${id}$`, 'm'));
    // the loop's children are born inside
    assert.ok(waitFor(() => cg.pids().some((p) => p !== pid), 1000), 'a forked sleep shows up in pids()');

    assert.ok(waitFor(() => (cg.stats().memory?.usage ?? 0) > 0, 2000), 'memory usage is charged');
    const st = cg.stats();
    assert.equal(st.memory!.limit, 64 << 20);
    assert.equal(st.memory!.oomKills, 0);
    assert.equal(st.pids!.limit, 20);
    assert.ok(st.pids!.current >= 1 && st.pids!.current <= 2, JSON.stringify(st.pids));
    if (st.cpu) assert.ok(waitFor(() => cg.stats().cpu!.usageNs > 0, 2000), 'cpu time is charged');

    assert.equal(cg.frozen(), false);
    cg.freeze();
    assert.equal(cg.frozen(), true);
    // A frozen task sleeps in the freezer (D) rather than its own interruptible sleep (S).
    assert.equal(procState(pid), 'D');
    cg.thaw();
    assert.equal(cg.frozen(), false);
    assert.ok(waitFor(() => procState(pid) !== 'D', 1000), `state after thaw: ${procState(pid)}`);

    cg.destroy();
    for (const h of cg.toJSON().hierarchies) assert.ok(!existsSync(h.path), h.path);
    assert.ok(waitFor(() => !alive(pid), 2000), 'sleep was killed');
    cg.destroy(); // idempotent
  } finally {
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    try {
      cg.destroy();
    } catch {
      // reported by the assertions above
    }
  }
});

test('real cgroup: a value the kernel refuses rolls back every directory', { skip }, () => {
  const cg = openCgroup({ id: `pier-it-rb-${process.pid}`, cgroupsPath: `/pier-it-rb-${process.pid}/inner` });
  assert.throws(() => cg.create({ pids: { limit: 5 }, cpu: { shares: 1 } }), /cannot set cpu shares 1/);
  for (const h of cg.toJSON().hierarchies) {
    assert.ok(!existsSync(h.path), h.path);
    assert.ok(!existsSync(join(h.path, '..')), 'created parent removed too');
  }
});

test('real cgroup: hybrid hugetlb goes to the unified hierarchy', { skip: skip || (detectMode() !== 'hybrid' && 'not hybrid') }, () => {
  const cg = openCgroup({ id: `pier-it-hp-${process.pid}` });
  const u = cg.toJSON().hierarchies.find((h) => h.type === 'cgroup2');
  const hasV1 = cg.toJSON().hierarchies.some((h) => h.type === 'cgroup' && h.controllers.includes('hugetlb'));
  if (!u || hasV1 || !u.controllers.includes('hugetlb')) return;
  const rootCtl = join(u.mountPoint, 'cgroup.subtree_control');
  const before = readFileSync(rootCtl, 'utf8').trim().split(/\s+/);
  try {
    cg.create({ hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }] });
    assert.equal(read(u.path, 'hugetlb.2MB.max'), String(4 << 20));
    assert.ok(readFileSync(rootCtl, 'utf8').includes('hugetlb'));
  } finally {
    cg.destroy();
    // Leave the host's root subtree_control as it was.
    if (!before.includes('hugetlb')) writeFileSync(rootCtl, '-hugetlb');
  }
  assert.ok(!existsSync(u.path));
});
