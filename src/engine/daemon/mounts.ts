/**
 * `-v` specs as docker reads them: `NAME:/dst[:ro|rw]` (named volume), `/host:/dst[:ro|rw]` (bind
 * mount), `/dst` (anonymous volume). No mount may cover the container's root or its /proc.
 */
import { PierError } from '../../common/errors.ts';
import { validVolumeName } from '../volume/index.ts';

export interface VolumeSpec {
  kind: 'named' | 'bind' | 'anonymous';
  source?: string;
  destination: string;
  readOnly: boolean;
}

/**
 * Refuse a mount destination of `/` (it would replace the image's root) or /proc and below: the
 * runtime writes to procfs files while it confines the container (the LSM label in
 * /proc/self/attr, for one), and a mount over /proc puts files the container controls there — a
 * malicious image mounting over /proc bypassed AppArmor in runc (CVE-2019-16884), and volumes led
 * onto /proc by symlinks did the same (CVE-2019-19921). It would also undo /proc's masked and
 * read-only paths. docker refuses both. `shown` is how the error names the destination.
 */
export function checkMountDestination(dst: string, shown = dst): void {
  if (dst === '/') throw new PierError(`invalid volume destination ${shown}: a mount cannot replace the container's root`);
  if (dst === '/proc' || dst.startsWith('/proc/')) throw new PierError(`invalid volume destination ${shown}: mounts over /proc are not allowed`);
}

export function parseVolumeSpec(s: string): VolumeSpec {
  const spec = parse(s);
  checkMountDestination(spec.destination, `${spec.destination} in ${JSON.stringify(s)}`);
  return spec;
}

function parse(s: string): VolumeSpec {
  const parts = s.split(':');
  if (parts.length === 1) {
    if (!s.startsWith('/')) throw new PierError(`invalid volume ${JSON.stringify(s)}: the container path must be absolute`);
    return { kind: 'anonymous', destination: normalize(s), readOnly: false };
  }
  if (parts.length > 3) throw new PierError(`invalid volume ${JSON.stringify(s)}: too many ":"`);
  const [src, dst, mode] = parts as [string, string, string | undefined];
  if (!dst || !dst.startsWith('/')) throw new PierError(`invalid volume ${JSON.stringify(s)}: the container path must be absolute`);
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new PierError(`invalid volume ${JSON.stringify(s)}: mode must be ro or rw, not ${JSON.stringify(mode)}`);
  const readOnly = mode === 'ro';
  if (src.startsWith('/')) return { kind: 'bind', source: normalize(src), destination: normalize(dst), readOnly };
  if (!validVolumeName(src)) throw new PierError(`invalid volume ${JSON.stringify(s)}: "${src}" is neither an absolute host path nor a volume name`);
  return { kind: 'named', source: src, destination: normalize(dst), readOnly };
}

function normalize(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (!part || part === '.') continue;
    if (part === '..') throw new PierError(`invalid path ${JSON.stringify(p)}: ".." is not allowed`);
    out.push(part);
  }
  return `/${out.join('/')}`;
}
