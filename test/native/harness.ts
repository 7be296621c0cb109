/**
 * Shared fixtures for the native helper tests: plan inputs for the busybox rootfs, and a runner that
 * captures the container's output through a temp file (we never hand it our own stdout).
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spec } from '../../src/runtime/spec.ts';
import type { CreatePlanInput } from '../../src/runtime/plan/create.ts';
import type { CgroupMount } from '../../src/runtime/plan/mounts.ts';
import { startHelper, type Helper, type HelperExit } from '../../src/runtime/helper/index.ts';
import type { PlanOp } from '../../src/runtime/plan/ops.ts';
import { baseSpec, busyboxRootfs } from '../helpers/rootfs.ts';

export const isRoot = process.getuid?.() === 0;

const CAPS: Record<string, number> = { CAP_CHOWN: 0, CAP_KILL: 5, CAP_NET_BIND_SERVICE: 10, CAP_SYS_ADMIN: 21, CAP_AUDIT_WRITE: 29 };
export function mask(names: string[] = []): bigint {
  return names.reduce((m, n) => m | (1n << BigInt(CAPS[n])), 0n);
}

/** The host's cgroup hierarchies as the container should see them (hybrid here). */
export function hostCgroupMounts(): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const mp = pre.split(' ')[4];
    const [fstype, , sup] = post.split(' ');
    if ((fstype !== 'cgroup' && fstype !== 'cgroup2') || !mp.startsWith('/sys/fs/cgroup')) continue;
    const opts = sup.split(',').filter((o) => o !== 'rw' && o !== 'ro').join(',');
    out.push({ name: mp === '/sys/fs/cgroup' ? '' : mp.slice('/sys/fs/cgroup/'.length), hostPath: mp, fstype, options: opts });
  }
  return out;
}

export function createInput(spec: Spec, over: Partial<CreatePlanInput> = {}): CreatePlanInput {
  const caps = spec.process?.capabilities ?? {};
  return {
    id: `t${process.pid}`,
    spec,
    bundle: '/nonexistent-bundle',
    rootfs: busyboxRootfs(),
    cgroupProcs: [],
    cgroupMounts: hostCgroupMounts(),
    noPivot: false,
    noNewKeyring: false,
    preserveFds: 0,
    capMasks: { bounding: mask(caps.bounding), effective: mask(caps.effective), permitted: mask(caps.permitted),
      inheritable: mask(caps.inheritable), ambient: mask(caps.ambient) },
    rlimits: [{ resource: 7, soft: 1024n, hard: 1024n }],
    mode: 'wait',
    ...over,
  };
}

export { baseSpec };

export interface RunResult { out: string; exit: HelperExit; pid: number; helper: Helper }

/** Run a wait-mode plan to completion; stdout+stderr of the container are returned as `out`. */
export async function runPlan(plan: PlanOp[], opts: { state?: boolean } = {}): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'pier-native-'));
  const file = join(dir, 'out');
  const fd = openSync(file, 'w+');
  try {
    const helper = startHelper(plan, { stdio: ['ignore', fd, fd] });
    const pid = await helper.pid;
    if (opts.state !== false && plan.some((o) => o.op === 'SYNC_WAIT')) {
      helper.sendState(JSON.stringify({ ociVersion: '1.2.0', id: 'x', status: 'creating', pid, bundle: '/' }));
      helper.go();
    }
    await helper.ready;
    const exit = await helper.exit;
    return { out: readFileSync(file, 'utf8'), exit, pid, helper };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
