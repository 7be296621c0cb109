/** Checks a ShimConfig before anything is made, so a bad one fails with a line naming the field. */
import { isAbsolute } from 'node:path';
import { PierError } from '../../common/errors.ts';
import type { ShimConfig } from './types.ts';

export function checkConfig(cfg: ShimConfig): void {
  const bad = (field: string, why: string): never => { throw new PierError(`shim config: ${field} ${why}`); };
  if (!cfg || typeof cfg !== 'object') bad('', 'must be an object');
  // runc's id rule; the runtime checks it again, but the id also names files here
  if (typeof cfg.id !== 'string' || !/^[\w+\-.]+$/.test(cfg.id) || cfg.id === '.' || cfg.id === '..') bad('id', `${JSON.stringify(cfg.id)} is not a valid container id`);
  for (const f of ['bundle', 'runtimeRoot', 'socket', 'exitFile'] as const) {
    if (typeof cfg[f] !== 'string' || !isAbsolute(cfg[f])) bad(f, 'must be an absolute path');
  }
  if (cfg.runtime !== undefined && (typeof cfg.runtime !== 'string' || !cfg.runtime)) bad('runtime', 'must be a path');
  if (!cfg.log || typeof cfg.log.path !== 'string' || !isAbsolute(cfg.log.path)) bad('log.path', 'must be an absolute path');
  if (!Number.isInteger(cfg.log.maxSize) || cfg.log.maxSize < 0) bad('log.maxSize', 'must be a byte count >= 0');
  if (!Number.isInteger(cfg.log.maxFiles) || cfg.log.maxFiles < 1) bad('log.maxFiles', 'must be an integer >= 1');
  if (typeof cfg.stdin !== 'boolean') bad('stdin', 'must be a boolean');
  if (typeof cfg.tty !== 'boolean') bad('tty', 'must be a boolean');
  if (Buffer.byteLength(cfg.socket) > 107) bad('socket', `${cfg.socket} is longer than a unix socket path may be (107 bytes)`);
  if (cfg.rootfsMounts !== undefined) {
    const r = cfg.rootfsMounts;
    if (!cfg.runtime) bad('rootfsMounts', 'is for a runc-compatible binary (pier\'s runtime takes them in the spec)');
    if (!r || typeof r.target !== 'string' || !isAbsolute(r.target)) bad('rootfsMounts.target', 'must be an absolute path');
    if (!Array.isArray(r.mounts) || r.mounts.length === 0 || r.mounts.length > 16) bad('rootfsMounts.mounts', 'must be 1 to 16 mounts');
    r.mounts.forEach((m, i) => {
      if (m.type !== 'overlay' && m.type !== 'bind') bad(`rootfsMounts.mounts[${i}].type`, 'must be overlay or bind');
      if (typeof m.source !== 'string' || (m.type === 'bind' && !isAbsolute(m.source))) bad(`rootfsMounts.mounts[${i}].source`, 'must be a path');
      if (!Array.isArray(m.options) || !m.options.every((o) => typeof o === 'string' && !o.includes('\0'))) bad(`rootfsMounts.mounts[${i}].options`, 'must be strings');
    });
  }
  if (cfg.runtime && cfg.tty) {
    bad('tty', 'needs pier\'s own runtime: runc hands the pty out only over a console socket (SCM_RIGHTS), which Node cannot receive');
  }
}
