/**
 * bundle: an image config → the runtime spec pier-runtime runs (the runtime's default container, with
 * the image's command, environment, working dir and user), and the bundle dir holding it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic.ts';
import { Scope, readFileIn } from '../common/rooted.ts';
import { PierError } from '../common/errors.ts';
import { defaultSpec, ROOTFS_SUID_DEV_ANNOTATION } from '../runtime/index.ts';
import type { Spec } from '../runtime/index.ts';
import type { ImageConfig } from './oci/index.ts';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const STOP_SIGNAL_ANNOTATION = 'org.opencontainers.image.stopSignal';

export interface ImageSpecOptions {
  rootfs: string;
  /** Replaces the image's Cmd (Entrypoint stays, as `docker run image args…`). */
  args?: string[];
  /** Replaces the image's Entrypoint (and drops its Cmd unless args are given). */
  entrypoint?: string[];
  /** KEY=VALUE entries, overriding the image's by key. */
  env?: string[];
  user?: string;
  cwd?: string;
  hostname?: string;
  terminal?: boolean;
  readonly?: boolean;
}

function mergeEnv(base: string[], over: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...over]) {
    const i = e.indexOf('=');
    out.set(i < 0 ? e : e.slice(0, i), e);
  }
  return [...out.values()];
}

/** The runtime spec for a container of this image. */
export function imageSpec(config: ImageConfig, opts: ImageSpecOptions): Spec {
  const c = config.config ?? {};
  const entrypoint = opts.entrypoint ?? c.Entrypoint ?? [];
  const cmd = opts.args ?? (opts.entrypoint ? [] : c.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new PierError('the image has no command (no Entrypoint or Cmd): give one');
  const spec = defaultSpec({ args });
  const proc = spec.process!;
  let env = mergeEnv([], c.Env ?? []);
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH);
  env = mergeEnv(env, opts.env ?? []);
  if (!env.some((e) => e.startsWith('HOSTNAME=')) && opts.hostname) env.push(`HOSTNAME=${opts.hostname}`);
  proc.env = env;
  proc.cwd = opts.cwd ?? (c.WorkingDir || '/');
  if (!proc.cwd.startsWith('/')) throw new PierError(`working directory "${proc.cwd}" is not absolute`);
  proc.terminal = opts.terminal ?? false;
  const user = opts.user ?? c.User ?? '';
  proc.user = user === '' ? { uid: 0, gid: 0 } : resolveUser(opts.rootfs, user);
  spec.root = { path: opts.rootfs, readonly: opts.readonly ?? false };
  if (opts.hostname) spec.hostname = opts.hostname;
  if (c.StopSignal) spec.annotations = { ...spec.annotations, [STOP_SIGNAL_ANNOTATION]: c.StopSignal };
  // The snapshotter's host mount is nosuid,nodev; the container has set-id and devices, as in docker.
  spec.annotations = { ...spec.annotations, [ROOTFS_SUID_DEV_ANNOTATION]: 'true' };
  return spec;
}

/** Write `<dir>/config.json` (atomically), creating the dir. */
export function writeBundle(dir: string, spec: Spec): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'config.json');
  writeFileAtomic(path, `${JSON.stringify(spec, null, 2)}\n`, { fsync: true });
  return path;
}

/** A text file of the rootfs by its in-container path, or undefined when it is absent. */
function readInRoot(rootfs: string, path: string): string | undefined {
  // Read through fds from the rootfs (a running container's, for exec -u): a symlink swapped in
  // cannot make us read a host file.
  const scope = Scope.open(rootfs);
  try {
    return readFileIn(scope, path)?.toString('utf8');
  } finally {
    scope.close();
  }
}

function table(text: string | undefined): string[][] {
  if (!text) return [];
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

const NUMERIC = /^\d+$/;

/** `uid`, `uid:gid`, `name`, `name:group` (names from the rootfs's /etc/passwd and /etc/group). */
export function resolveUser(rootfs: string, user: string): { uid: number; gid: number; additionalGids?: number[]; username?: string } {
  const [u, g] = user.split(':', 2) as [string, string | undefined];
  const passwd = table(readInRoot(rootfs, '/etc/passwd'));
  const groups = table(readInRoot(rootfs, '/etc/group'));
  let uid: number;
  let gid: number | undefined;
  let name: string | undefined;
  if (NUMERIC.test(u)) {
    uid = Number(u);
    const row = passwd.find((r) => r[2] === u);
    if (row) { name = row[0]; gid = Number(row[3]); }
  } else {
    const row = passwd.find((r) => r[0] === u);
    if (!row) throw new PierError(`user "${u}" is not in the image's /etc/passwd`);
    uid = Number(row[2]);
    gid = Number(row[3]);
    name = u;
  }
  if (g !== undefined && g !== '') {
    if (NUMERIC.test(g)) gid = Number(g);
    else {
      const row = groups.find((r) => r[0] === g);
      if (!row) throw new PierError(`group "${g}" is not in the image's /etc/group`);
      gid = Number(row[2]);
    }
  }
  if (!Number.isSafeInteger(uid) || uid > 0xfffffffe || (gid !== undefined && (!Number.isSafeInteger(gid) || gid > 0xfffffffe))) {
    throw new PierError(`invalid user "${user}"`);
  }
  const out: { uid: number; gid: number; additionalGids?: number[]; username?: string } = { uid, gid: gid ?? 0 };
  if (name !== undefined) {
    // Supplementary groups as login would give them, only when the group was not forced.
    const extra = g === undefined
      ? groups.filter((r) => (r[3] ?? '').split(',').includes(name!)).map((r) => Number(r[2])).filter((x) => x !== out.gid)
      : [];
    if (extra.length) out.additionalGids = [...new Set(extra)];
  }
  return out;
}
