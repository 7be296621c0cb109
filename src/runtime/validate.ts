/**
 * Validation of config.json before anything is made: every rejection is one PierError naming the
 * field. Fields pier does not implement are refused here, so a container never starts with a
 * setting silently dropped.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { PierError } from '../common/errors.ts';
import type { Namespace, NamespaceType, Spec } from './spec.ts';

const NS_TYPES: NamespaceType[] = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'];
const PROPAGATIONS = ['', 'private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable'];
const ID_RE = /^[\w+\-.]+$/;

function bad(msg: string): never {
  throw new PierError(msg);
}

export function validateId(id: string | undefined): string {
  if (!id) bad('container id cannot be empty');
  if (!ID_RE.test(id) || id === '.' || id === '..') bad(`invalid container id format: ${id}`);
  return id;
}

/** Parse config.json text; a syntax error is reported with the file name. */
export function parseSpec(text: string, file: string): Spec {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    bad(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) bad(`${file}: config must be a JSON object`);
  return v as Spec;
}

export function hasNamespace(spec: Spec, type: NamespaceType): boolean {
  return (spec.linux?.namespaces ?? []).some((n) => n.type === type);
}

function nsOf(spec: Spec, type: NamespaceType): Namespace | undefined {
  return (spec.linux?.namespaces ?? []).find((n) => n.type === type);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** Checks a whole spec for `create`. `needProcess` is false for specs used only as templates. */
export function validateSpec(spec: Spec, opts: { needProcess?: boolean } = {}): void {
  if (typeof spec.ociVersion !== 'string' || !/^1\.\d+\.\d+/.test(spec.ociVersion)) {
    bad(`ociVersion ${JSON.stringify(spec.ociVersion)} is not a supported 1.x version`);
  }
  if (!spec.root || typeof spec.root.path !== 'string' || spec.root.path === '') bad('root.path must be set');
  validateLinux(spec);
  if (opts.needProcess !== false) {
    if (!spec.process) bad('process must be set to create a container');
    validateProcess(spec);
  }
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    if (typeof m.destination !== 'string' || m.destination === '') bad(`mounts[${i}].destination must be set`);
    if (!isAbsolute(m.destination)) bad(`mounts[${i}].destination ${JSON.stringify(m.destination)} must be an absolute path`);
    if (m.uidMappings || m.gidMappings) bad(`mounts[${i}]: id-mapped mounts (uidMappings/gidMappings) are not supported`);
    if (m.options && !Array.isArray(m.options)) bad(`mounts[${i}].options must be an array of strings`);
  }
  for (const phase of ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const) {
    for (const [i, h] of (spec.hooks?.[phase] ?? []).entries()) {
      if (!h || typeof h.path !== 'string' || !isAbsolute(h.path)) bad(`hooks.${phase}[${i}].path must be an absolute path`);
      if (h.timeout !== undefined && (!isInt(h.timeout) || h.timeout <= 0)) bad(`hooks.${phase}[${i}].timeout must be a positive integer`);
    }
  }
}

function validateProcess(spec: Spec): void {
  const p = spec.process!;
  if (!Array.isArray(p.args) || p.args.length === 0) bad('process.args must not be empty');
  if (p.commandLine !== undefined) bad('process.commandLine is for Windows and is not supported');
  if (typeof p.cwd !== 'string' || !isAbsolute(p.cwd)) bad(`process.cwd ${JSON.stringify(p.cwd)} must be an absolute path`);
  if (!p.user || !isInt(p.user.uid) || !isInt(p.user.gid)) bad('process.user.uid and process.user.gid must be integers');
  if (p.user.umask !== undefined && (!isInt(p.user.umask) || p.user.umask < 0 || p.user.umask > 0o777)) bad('process.user.umask must be 0..0777');
  for (const g of p.user.additionalGids ?? []) if (!isInt(g) || g < 0) bad(`process.user.additionalGids: ${g} is not a valid gid`);
  for (const e of p.env ?? []) if (typeof e !== 'string' || !e.includes('=')) bad(`process.env entry ${JSON.stringify(e)} must be KEY=value`);
  if (p.oomScoreAdj !== undefined && (!isInt(p.oomScoreAdj) || p.oomScoreAdj < -1000 || p.oomScoreAdj > 1000)) bad('process.oomScoreAdj must be -1000..1000');
  if (p.apparmorProfile) {
    const enabled = (() => { try { return readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y'; } catch { return false; } })();
    if (!enabled) bad(`process.apparmorProfile ${JSON.stringify(p.apparmorProfile)} given but AppArmor is not enabled on this host`);
    bad('process.apparmorProfile is not supported by pier-runtime');
  }
  if (p.selinuxLabel && existsSync('/sys/fs/selinux/enforce')) bad('process.selinuxLabel is not supported by pier-runtime');
  if (p.ioPriority) bad('process.ioPriority is not supported by pier-runtime');
  if (p.scheduler) bad('process.scheduler is not supported by pier-runtime');
  if (p.execCPUAffinity) bad('process.execCPUAffinity is not supported by pier-runtime');
  if (p.consoleSize && (!isInt(p.consoleSize.height) || !isInt(p.consoleSize.width))) bad('process.consoleSize needs integer height and width');
}

function validateLinux(spec: Spec): void {
  const l = spec.linux;
  if (!l) return;
  const seen = new Set<string>();
  for (const [i, n] of (l.namespaces ?? []).entries()) {
    if (!NS_TYPES.includes(n.type)) bad(`linux.namespaces[${i}]: unknown namespace type ${JSON.stringify(n.type)}`);
    if (seen.has(n.type)) bad(`linux.namespaces: duplicate namespace ${n.type}`);
    seen.add(n.type);
    if (n.path !== undefined && n.path !== '') {
      if (!isAbsolute(n.path)) bad(`linux.namespaces[${i}].path ${JSON.stringify(n.path)} must be absolute`);
      if (!existsSync(n.path)) bad(`linux.namespaces[${i}]: ${n.type} namespace path ${n.path} does not exist`);
    }
  }
  if (seen.has('time')) bad('linux.namespaces: time namespaces are not supported by pier-runtime');
  if ((l.uidMappings?.length || l.gidMappings?.length) && !seen.has('user')) {
    bad('linux.uidMappings/gidMappings need a user namespace in linux.namespaces');
  }
  const userNs = nsOf(spec, 'user');
  if (userNs && !userNs.path) {
    if (!l.uidMappings?.length || !l.gidMappings?.length) bad('a new user namespace needs linux.uidMappings and linux.gidMappings');
  }
  for (const [field, maps] of [['uidMappings', l.uidMappings], ['gidMappings', l.gidMappings]] as const) {
    for (const [i, m] of (maps ?? []).entries()) {
      if (!isInt(m.containerID) || !isInt(m.hostID) || !isInt(m.size) || m.size <= 0) bad(`linux.${field}[${i}] needs integer containerID, hostID and a positive size`);
    }
  }
  if (spec.hostname && !seen.has('uts')) bad('hostname is set but there is no private UTS namespace in linux.namespaces');
  if (spec.domainname && !seen.has('uts')) bad('domainname is set but there is no private UTS namespace in linux.namespaces');
  if (l.rootfsPropagation !== undefined && !PROPAGATIONS.includes(l.rootfsPropagation)) bad(`linux.rootfsPropagation ${JSON.stringify(l.rootfsPropagation)} is not a propagation mode`);
  for (const [key] of Object.entries(l.sysctl ?? {})) validateSysctl(key, seen);
  for (const [i, d] of (l.devices ?? []).entries()) {
    if (!isAbsolute(d.path ?? '')) bad(`linux.devices[${i}].path must be absolute`);
    if (!['c', 'b', 'u', 'p'].includes(d.type)) bad(`linux.devices[${i}].type ${JSON.stringify(d.type)} must be c, b, u or p`);
    if (d.type !== 'p' && (!isInt(d.major) || !isInt(d.minor))) bad(`linux.devices[${i}] (${d.path}) needs major and minor numbers`);
  }
  for (const p of [...(l.maskedPaths ?? []), ...(l.readonlyPaths ?? [])]) if (!isAbsolute(p)) bad(`masked/readonly path ${JSON.stringify(p)} must be absolute`);
  if (l.intelRdt) bad('linux.intelRdt is not supported by pier-runtime');
  if (l.timeOffsets) bad('linux.timeOffsets is not supported by pier-runtime');
  if (l.personality && l.personality.domain !== 'LINUX') bad(`linux.personality domain ${JSON.stringify(l.personality.domain)} is not supported`);
  if (l.mountLabel && existsSync('/sys/fs/selinux/enforce')) bad('linux.mountLabel (SELinux) is not supported by pier-runtime');
  if (l.seccomp?.listenerPath) bad('linux.seccomp.listenerPath (SCMP_ACT_NOTIFY) is not supported by pier-runtime');
  if (l.cgroupsPath !== undefined && typeof l.cgroupsPath !== 'string') bad('linux.cgroupsPath must be a string');
}

/** runc's rule: a sysctl is allowed only when the container has the namespace it belongs to. */
function validateSysctl(key: string, ns: Set<string>): void {
  const ipc = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];
  if (ipc.includes(key) || key.startsWith('fs.mqueue.')) {
    if (!ns.has('ipc')) bad(`sysctl ${JSON.stringify(key)} is not allowed in the host's IPC namespace`);
    return;
  }
  if (key.startsWith('net.')) {
    if (!ns.has('network')) bad(`sysctl ${JSON.stringify(key)} is not allowed in the host's network namespace`);
    return;
  }
  if (key === 'kernel.hostname' || key === 'kernel.domainname') {
    if (!ns.has('uts')) bad(`sysctl ${JSON.stringify(key)} is not allowed in the host's UTS namespace`);
    return;
  }
  bad(`sysctl ${JSON.stringify(key)} is not in a namespace the container owns, so it may not be set`);
}
