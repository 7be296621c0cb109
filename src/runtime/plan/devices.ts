/** /dev contents: the default device nodes, linux.devices, and the standard /dev symlinks. */
import { PierError } from '../../common/errors.ts';
import type { Device, Spec } from '../spec.ts';
import { MS } from './flags.ts';
import { containerPath } from './mounts.ts';
import { op, type PlanOp } from './ops.ts';

export const DEFAULT_DEVICES: Device[] = [
  { type: 'c', path: '/dev/null', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/zero', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/full', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/random', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/urandom', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
  { type: 'c', path: '/dev/tty', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
];

const SYMLINKS: [string, string][] = [
  ['/proc/self/fd', '/dev/fd'],
  ['/proc/self/fd/0', '/dev/stdin'],
  ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'],
  ['/proc/kcore', '/dev/core'],
  ['pts/ptmx', '/dev/ptmx'],
];

/** /dev is ours to populate unless the bundle bind-mounts one in. */
export function setsUpDev(spec: Spec): boolean {
  return !(spec.mounts ?? []).some((m) => containerPath(m.destination) === '/dev' &&
    (m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind')));
}

/** Default devices overridden by linux.devices of the same path, then the extra ones. */
export function deviceList(spec: Spec): Device[] {
  const extra = spec.linux?.devices ?? [];
  const byPath = new Map<string, Device>();
  if (setsUpDev(spec)) for (const d of DEFAULT_DEVICES) byPath.set(d.path, d);
  for (const d of extra) byPath.set(containerPath(d.path), { ...d, path: containerPath(d.path) });
  return [...byPath.values()];
}

/** In a user namespace mknod is refused, so the host's node is bind-mounted instead. */
export function deviceOps(spec: Spec, userns: boolean): PlanOp[] {
  const ops: PlanOp[] = [];
  for (const d of deviceList(spec)) {
    if (!['c', 'b', 'u', 'p'].includes(d.type)) throw new PierError(`device ${d.path}: unknown type ${d.type}`);
    if (d.type !== 'p' && (d.major === undefined || d.minor === undefined)) {
      throw new PierError(`device ${d.path}: major and minor are required for type ${d.type}`);
    }
    if (userns) {
      ops.push(op('MOUNT', d.path, d.path, '', MS.BIND, '', 'file'));
    } else {
      ops.push(op('MKNOD', d.path, d.type, d.major ?? 0, d.minor ?? 0, (d.fileMode ?? 0o666).toString(8), d.uid ?? 0, d.gid ?? 0));
    }
  }
  if (setsUpDev(spec)) {
    for (const [target, link] of SYMLINKS) ops.push(op('SYMLINK', target, link));
  }
  return ops;
}
