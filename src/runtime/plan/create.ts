/** Plan for `create`/`run`: a new container process in new or joined namespaces (runc semantics). */
import { PierError, messageOf } from '../../common/errors.ts';
import type { IdMapping, Spec } from '../spec.ts';
import { deviceOps } from './devices.ts';
import { CLONE, JOIN_ORDER, MS, NAMESPACES } from './flags.ts';
import { containerPath, mountOps, parseMountOptions, propagationFlag, type CgroupMount } from './mounts.ts';
import { op, type PlanOp } from './ops.ts';
import { hookOp, processOps, type CapMasks, type ResolvedRlimit, type SeccompProgram } from './process.ts';

export interface CreatePlanInput {
  id: string;
  spec: Spec;
  bundle: string;
  rootfs: string;             // absolute
  cgroupProcs: string[];      // cgroup.procs files the container joins
  cgroupMounts: CgroupMount[];
  fifoPath?: string;          // exec.fifo; absent → exec at once after SYNC_READY
  consoleSocket?: string;     // '-' = the helper relays its own stdio (wait mode only)
  noPivot: boolean;
  noNewKeyring: boolean;
  preserveFds: number;
  seccomp?: SeccompProgram;
  capMasks: CapMasks;
  rlimits: ResolvedRlimit[];
  mode: 'detach' | 'wait';
}

/**
 * `"true"`: the host's mount of the rootfs is nosuid,nodev only to protect the host (pier's
 * snapshotter makes it so); the container's own bind of it gets set-id programs and device nodes
 * back, as a docker container has them. Without it the bind keeps the host mount's flags, as runc's
 * does, so podman or containerd driving pier-runtime see runc's behaviour.
 */
export const ROOTFS_SUID_DEV_ANNOTATION = 'io.pier.rootfs.suid-dev';

/**
 * JSON `[{type, source, options}]`: mounts (a snapshot's, as data: image/snapshot prepareMounts)
 * that make the container's root filesystem, made in order onto root.path inside the container's
 * new mount namespace, before anything else of it. The host's mount table never holds them, so no
 * host user can reach the rootfs' set-id files or device nodes through a host path (the
 * CVE-2021-41091 class), and nothing is left mounted when the container's last process exits.
 */
export const ROOTFS_MOUNTS_ANNOTATION = 'io.pier.rootfs.mounts';
const MAX_ROOTFS_MOUNTS = 16;

/** The MOUNT ops of ROOTFS_MOUNTS_ANNOTATION (none without it); a malformed value is refused. */
export function rootfsMountOps(spec: Spec, rootfs: string): PlanOp[] {
  const raw = spec.annotations?.[ROOTFS_MOUNTS_ANNOTATION];
  if (raw === undefined) return [];
  const bad = (why: string) => new PierError(`annotation ${ROOTFS_MOUNTS_ANNOTATION}: ${why}`);
  let list: unknown;
  try { list = JSON.parse(raw); } catch { throw bad('not JSON'); }
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ROOTFS_MOUNTS) throw bad(`expected an array of 1 to ${MAX_ROOTFS_MOUNTS} mounts`);
  if ((spec.linux?.namespaces ?? []).some((n) => n.type === 'mount' && n.path)) throw bad('needs a new mount namespace, not a joined one');
  if (!(spec.linux?.namespaces ?? []).some((n) => n.type === 'mount')) throw bad('needs a new mount namespace (linux.namespaces has no "mount")');
  const ops: PlanOp[] = [];
  list.forEach((m: unknown, i) => {
    const e = m as { type?: unknown; source?: unknown; options?: unknown };
    if (typeof e !== 'object' || e === null) throw bad(`mount ${i} is not an object`);
    if (e.type !== 'overlay' && e.type !== 'bind') throw bad(`mount ${i}: type must be "overlay" or "bind", not ${JSON.stringify(e.type)}`);
    if (typeof e.source !== 'string' || (e.type === 'bind' && !e.source.startsWith('/'))) throw bad(`mount ${i}: source must be ${e.type === 'bind' ? 'an absolute path' : 'a string'}`);
    if (!Array.isArray(e.options) || !e.options.every((o) => typeof o === 'string' && !o.includes('\0'))) throw bad(`mount ${i}: options must be an array of strings`);
    let o;
    try { o = parseMountOptions(e.options as string[], `mount ${i}`); } catch (err) { throw bad(messageOf(err)); }
    if (e.type === 'bind') {
      ops.push(op('MOUNT', e.source, rootfs, '', MS.BIND | (o.recursive ? MS.REC : 0), '', ''));
      if (o.flags) ops.push(op('MOUNT', '', rootfs, '', MS.BIND | MS.REMOUNT | o.flags, '', ''));
    } else {
      ops.push(op('MOUNT', e.source, rootfs, 'overlay', o.flags, o.data, ''));
    }
  });
  return ops;
}

export const mapText = (maps: IdMapping[]): string => maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');

/** SETNS ops for joined namespaces, in JOIN_ORDER. */
export function setnsOps(joined: { type: string; path: string }[]): PlanOp[] {
  const withKernel = joined.map((n) => {
    const ns = NAMESPACES[n.type];
    if (!ns) throw new PierError(`namespace type ${JSON.stringify(n.type)} is not known`);
    return { kernel: ns.kernel, path: n.path };
  });
  withKernel.sort((a, b) => JOIN_ORDER.indexOf(a.kernel) - JOIN_ORDER.indexOf(b.kernel));
  return withKernel.map((n) => op('SETNS', n.kernel, n.path));
}

/** The host uid/gid that container root maps to (0/0 without a new user namespace). */
function hostRootIds(spec: Spec): { uid: number; gid: number } {
  const newUser = (spec.linux?.namespaces ?? []).some((n) => n.type === 'user' && !n.path);
  if (!newUser) return { uid: 0, gid: 0 };
  const find = (maps: { containerID: number; hostID: number; size: number }[] | undefined) =>
    (maps ?? []).find((m) => m.containerID <= 0 && 0 < m.containerID + m.size)?.hostID ?? 0;
  return { uid: find(spec.linux?.uidMappings), gid: find(spec.linux?.gidMappings) };
}

export function buildCreatePlan(input: CreatePlanInput): PlanOp[] {
  const { spec } = input;
  const proc = spec.process;
  if (!proc) throw new PierError('config.json has no process');
  if (!input.rootfs.startsWith('/')) throw new PierError(`rootfs must be absolute: ${input.rootfs}`);
  if (input.consoleSocket === '-' && input.mode !== 'wait') throw new PierError('a terminal without --console-socket needs run (wait mode)');
  if (proc.terminal && !input.consoleSocket) throw new PierError('process.terminal is true but no console socket was given');

  const nss = spec.linux?.namespaces ?? [];
  const has = (t: string): boolean => nss.some((n) => n.type === t);
  const isNew = (t: string): boolean => nss.some((n) => n.type === t && !n.path);
  // Without a mount namespace the container shares the host's mount table: pier then mounts nothing
  // (mounting would change the host's) and jails the process with chroot alone.
  // (create.ts warns about the mounts, devices and masked paths this skips).
  const ownMounts = has('mount');
  if (!ownMounts && spec.root?.readonly) throw new PierError('root.readonly needs a mount namespace in linux.namespaces');
  if (isNew('time')) throw new PierError('creating a time namespace is not supported by pier (join one by path instead)');
  const userns = has('user');
  const newUser = isNew('user');
  if ((spec.hostname || spec.domainname) && !has('uts')) {
    throw new PierError('hostname and domainname need a uts namespace');
  }

  // ---- parent: things that need host paths or the child's pid
  const ops: PlanOp[] = [];
  if (input.consoleSocket && proc.terminal) ops.push(op('CONSOLE_CONNECT', input.consoleSocket));
  // The parent (still host root, before any setns) makes the fifo: a child in a user namespace could not.
  if (input.fifoPath) {
    const root = hostRootIds(spec);
    ops.push(op('FIFO_OPEN', input.fifoPath, root.uid, root.gid));
  }
  for (const p of input.cgroupProcs) ops.push(op('CGROUP_PROCS', p));
  ops.push(...setnsOps(nss.filter((n) => n.path).map((n) => ({ type: n.type, path: n.path as string }))));
  if (newUser) {
    const um = spec.linux?.uidMappings ?? [], gm = spec.linux?.gidMappings ?? [];
    if (!um.length || !gm.length) throw new PierError('a new user namespace needs linux.uidMappings and linux.gidMappings');
    ops.push(op('UID_MAP', mapText(um)), op('GID_MAP', mapText(gm)));
  }
  let flags = 0;
  // the cgroup namespace is unshared by the child once it is in its cgroup, so its root is that cgroup
  for (const n of nss) if (!n.path && n.type !== 'cgroup') flags |= NAMESPACES[n.type]?.flag ?? 0;
  ops.push(op('CLONE', flags >>> 0, input.mode));

  // ---- child
  if (isNew('cgroup')) ops.push(op('UNSHARE', CLONE.NEWCGROUP));
  if (spec.hostname) ops.push(op('SETHOSTNAME', spec.hostname));
  if (spec.domainname) ops.push(op('SETDOMAINNAME', spec.domainname));
  // still the host's /proc here, but /proc/self and /proc/sys act on our own (new) namespaces
  if (proc.oomScoreAdj !== undefined) ops.push(op('WRITE', '/proc/self/oom_score_adj', String(proc.oomScoreAdj)));
  for (const [k, v] of Object.entries(spec.linux?.sysctl ?? {})) {
    if (k.includes('/') || k.includes('..')) throw new PierError(`sysctl ${k}: bad name`);
    ops.push(op('WRITE', `/proc/sys/${k.replaceAll('.', '/')}`, v));
  }
  if (!input.noNewKeyring) ops.push(op('KEYRING', `_ses.${input.id}`));

  if (ownMounts) {
    ops.push(...rootfsOps(input, { userns, netns: isNew('network'), cgroupns: has('cgroup') }));
  } else {
    ops.push(op('SYNC_WAIT'));
    for (const h of spec.hooks?.createContainer ?? []) ops.push(hookOp(h));
    ops.push(op('CHROOT', input.rootfs, 'jail'));
  }
  ops.push(op('SETSID'));
  if (proc.terminal) {
    ops.push(op('CONSOLE_SETUP', '/dev/ptmx', proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0, '/dev/console'));
  }
  const beforeExec: PlanOp[] = [];
  if (input.fifoPath) beforeExec.push(op('FIFO_WAIT'));
  for (const h of spec.hooks?.startContainer ?? []) beforeExec.push(hookOp(h));
  ops.push(...processOps({ process: proc, seccomp: input.seccomp, capMasks: input.capMasks, rlimits: input.rlimits,
    preserveFds: input.preserveFds, beforeExec }));
  return ops;
}

/**
 * The container's own mount table: `/` made rslave (or rootfsPropagation), the rootfs bound onto
 * itself (and, with ROOTFS_SUID_DEV_ANNOTATION, that bind's nosuid,nodev cleared), the spec's mounts, devices, masked and read-only paths, then createContainer hooks and the
 * switch of root.
 */
function rootfsOps(input: CreatePlanInput, ns: { userns: boolean; netns: boolean; cgroupns: boolean }): PlanOp[] {
  const { spec } = input;
  const proc = spec.process!;
  const prop = propagationFlag(spec.linux?.rootfsPropagation);
  const preProp = prop !== undefined && !(prop & MS.SHARED) ? prop : MS.SLAVE | MS.REC;
  const ops: PlanOp[] = [
    // our mount events must not reach the host; pivot_root also refuses a shared parent
    op('MOUNT', '', '/', '', preProp | MS.REC, '', ''),
    // the snapshot's mounts as data, made here and only here (ROOTFS_MOUNTS_ANNOTATION)
    ...rootfsMountOps(spec, input.rootfs),
    op('MOUNT', input.rootfs, input.rootfs, '', MS.BIND | MS.REC, '', ''),
  ];
  // The bind is ours alone (/ is a slave now): clearing its flags leaves the host's mount nosuid,nodev.
  // Read-only, noexec and atime flags stay as the host mount has them; root.readonly comes at the end.
  if (spec.annotations?.[ROOTFS_SUID_DEV_ANNOTATION] === 'true') ops.push(op('REMOUNT_CLEAR', input.rootfs, MS.NOSUID | MS.NODEV));
  ops.push(op('SETROOT', input.rootfs));
  const ctx = { bundle: input.bundle, ...ns, cgroupMounts: input.cgroupMounts };
  for (const m of spec.mounts ?? []) ops.push(...mountOps(m, ctx));
  ops.push(...deviceOps(spec, ns.userns));
  ops.push(op('MKDIR', containerPath(proc.cwd), '755'));
  for (const p of spec.linux?.maskedPaths ?? []) ops.push(op('MASK', containerPath(p)));
  for (const p of spec.linux?.readonlyPaths ?? []) ops.push(op('READONLY', containerPath(p)));
  // Node runs prestart/createRuntime hooks after `pid`, then sends `state` + `go`
  ops.push(op('SYNC_WAIT'));
  for (const h of spec.hooks?.createContainer ?? []) ops.push(hookOp(h));
  ops.push(input.noPivot ? op('CHROOT', input.rootfs) : op('PIVOT_ROOT', input.rootfs));
  if (prop !== undefined && prop & MS.SHARED) ops.push(op('MOUNT', '', '/', '', prop | MS.REC, '', ''));
  if (spec.root?.readonly) ops.push(op('MOUNT', '', '/', '', MS.BIND | MS.REMOUNT | MS.RDONLY, '', ''));
  return ops;
}
