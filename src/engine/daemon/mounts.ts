/**
 * `-v` specs as docker reads them: `NAME:/dst[:ro|rw]` (named volume), `/host:/dst[:ro|rw]` (bind
 * mount), `/dst` (anonymous volume).
 */
import { PierError } from '../../common/errors.ts';
import { validVolumeName } from '../volume/index.ts';

export interface VolumeSpec {
  kind: 'named' | 'bind' | 'anonymous';
  source?: string;
  destination: string;
  readOnly: boolean;
}

export function parseVolumeSpec(s: string): VolumeSpec {
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
