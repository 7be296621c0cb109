/**
 * create: make everything a container needs and leave its init blocked on exec.fifo until start.
 * Order: validate (nothing made yet) → reserve the state dir → cgroup → helper (namespaces, mounts,
 * pivot_root) → prestart/createRuntime hooks → release the child → wait until it is blocked on the
 * fifo → pid file. Any failure undoes all of it: kill, cgroup, state dir.
 */
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { messageOf, PierError } from '../../common/errors.ts';
import { writeFileAtomic } from '../../common/atomic.ts';
import { parseSpec, validateId, validateSpec } from '../validate.ts';
import type { DeviceCgroup, LinuxResources, Spec } from '../spec.ts';
import { openCgroup, type Cgroup } from '../cgroups/index.ts';
import { buildCreatePlan, rootfsMountOps } from '../plan/index.ts';
import { startHelper, type Helper } from '../helper/index.ts';
import { procStat, signalProcess } from '../proc.ts';
import { runHooks } from '../hooks.ts';
import { processSecurity } from './security.ts';
import type { ContainerRecord } from '../state.ts';
import type { RuntimeContext, Stdio } from './context.ts';

export interface CreateOptions {
  id: string;
  bundle?: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  stdio?: Stdio;
  /** detach: the helper exits once the init is set up (create). wait: it stays as the init's parent (run). */
  mode?: 'detach' | 'wait';
}

export interface Created {
  record: ContainerRecord;
  helper: Helper;
}

export function loadBundleSpec(bundleDir: string | undefined): { bundle: string; spec: Spec; rootfs: string } {
  const bundle = resolve(bundleDir ?? process.cwd());
  const configPath = join(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (err) {
    throw new PierError(`cannot read bundle config ${configPath}: ${messageOf(err)}`);
  }
  const spec = parseSpec(text, configPath);
  validateSpec(spec);
  const rootfs = resolve(bundle, spec.root!.path);
  let isDir = false;
  try { isDir = statSync(rootfs).isDirectory(); } catch { /* reported below */ }
  if (!isDir) throw new PierError(`rootfs ${rootfs} does not exist or is not a directory`);
  rootfsMountOps(spec, rootfs); // a malformed rootfs-mounts annotation is refused before anything is made
  return { bundle, spec, rootfs };
}

/**
 * The device cgroup rules a container gets, runc's way: the spec's own rules, then the devices every
 * container needs (null, zero, full, random, urandom, tty, ptmx, pts; mknod of anything), then each
 * device listed in linux.devices.
 */
export function deviceRules(spec: Spec): DeviceCgroup[] {
  const c = (major: number, minor: number | undefined): DeviceCgroup => ({ allow: true, type: 'c', major, minor, access: 'rwm' });
  return [
    ...(spec.linux?.resources?.devices ?? []),
    { allow: true, type: 'c', access: 'm' },
    { allow: true, type: 'b', access: 'm' },
    c(1, 3), c(1, 5), c(1, 7), c(1, 8), c(1, 9), c(5, 0), c(5, 2), c(136, undefined),
    ...(spec.linux?.devices ?? []).filter((d) => d.type !== 'p').map((d): DeviceCgroup => ({
      allow: true, type: d.type === 'u' ? 'c' : d.type, major: d.major, minor: d.minor, access: 'rwm',
    })),
  ];
}

function resourcesWithDevices(spec: Spec): LinuxResources {
  return { ...(spec.linux?.resources ?? {}), devices: deviceRules(spec) };
}

export async function create(ctx: RuntimeContext, opts: CreateOptions): Promise<Created> {
  const id = validateId(opts.id);
  const mode = opts.mode ?? 'detach';
  const { bundle, spec, rootfs } = loadBundleSpec(opts.bundle);
  const proc = spec.process!;
  let consoleSocket = opts.consoleSocket;
  if (proc.terminal) {
    if (!consoleSocket) {
      if (mode === 'detach') throw new PierError('process.terminal is true: a detached container needs --console-socket');
      consoleSocket = '-';
    }
  } else if (consoleSocket) {
    throw new PierError('--console-socket was given but process.terminal is false');
  }
  // Everything that can be decided without touching the system is decided here, before any state exists.
  const security = processSecurity(proc, spec.linux?.seccomp);
  const preserveFds = opts.preserveFds ?? 0;
  if (!Number.isInteger(preserveFds) || preserveFds < 0) throw new PierError(`--preserve-fds must be a non-negative integer`);

  if (!(spec.linux?.namespaces ?? []).some((n) => n.type === 'mount')) {
    const skipped = (spec.mounts?.length ?? 0) + (spec.linux?.devices?.length ?? 0) + (spec.linux?.maskedPaths?.length ?? 0) + (spec.linux?.readonlyPaths?.length ?? 0);
    if (skipped) ctx.log.warn(`no mount namespace: the container shares the host's mount table, so ${skipped} mounts, devices and masked/read-only paths are not set up`);
  }
  ctx.store.reserve(id);
  let cgroup: Cgroup | undefined;
  let helper: Helper | undefined;
  let pid = 0;
  try {
    cgroup = openCgroup({ id, cgroupsPath: spec.linux?.cgroupsPath });
    cgroup.create(resourcesWithDevices(spec));
    const record: ContainerRecord = {
      id, bundle, rootfs, pid: 0,
      created: new Date().toISOString(),
      owner: userInfo().username,
      phase: 'creating',
      annotations: spec.annotations,
      config: spec,
      cgroup: cgroup.toJSON(),
    };
    ctx.store.save(record);
    const plan = buildCreatePlan({
      id, spec, bundle, rootfs,
      cgroupProcs: cgroup.procsFiles(),
      cgroupMounts: cgroup.mountSources(),
      fifoPath: ctx.store.fifo(id),
      consoleSocket: consoleSocket === undefined || consoleSocket === '-' ? consoleSocket : resolve(consoleSocket),
      noPivot: opts.noPivot ?? false,
      noNewKeyring: opts.noNewKeyring ?? false,
      preserveFds,
      seccomp: security.seccomp,
      capMasks: security.capMasks,
      rlimits: security.rlimits,
      mode,
    });
    ctx.log.debug(`create ${id}: plan of ${plan.length} ops`);
    helper = startHelper(plan, { preserveFds, stdio: opts.stdio ?? 'inherit' });
    pid = await helper.pid;
    record.pid = pid;
    record.startTime = procStat(pid)?.startTime;
    ctx.store.save(record);
    const state = ctx.store.stateOf(record);
    await runHooks('prestart', spec.hooks?.prestart, state);
    await runHooks('createRuntime', spec.hooks?.createRuntime, state);
    helper.sendState(JSON.stringify(state));
    helper.go();
    await helper.ready;
    record.phase = 'created';
    ctx.store.save(record);
    if (opts.pidFile) writeFileAtomic(resolve(opts.pidFile), String(pid));
    return { record, helper };
  } catch (err) {
    // An init that vanished without a word was most likely killed by the kernel: say so if it was the OOM killer.
    if (pid > 0 && cgroup && err instanceof PierError && /closed its control socket/.test(err.message)) {
      const kills = (() => { try { return cgroup.stats().memory?.oomKills ?? 0; } catch { return 0; } })();
      if (kills > 0) err = new PierError(`the container init was killed by the OOM killer during create: linux.resources.memory.limit ${spec.linux?.resources?.memory?.limit} is too low`);
    }
    if (pid > 0) signalProcess(pid, 9);
    if (helper) {
      helper.kill();
      await helper.exit.catch(() => undefined);
    }
    try { cgroup?.destroy(); } catch (e) { ctx.log.warn(`cleanup of cgroup failed: ${messageOf(e)}`); }
    ctx.store.remove(id);
    throw err;
  }
}
