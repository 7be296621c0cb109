/**
 * Test fixtures: a busybox rootfs built from Debian's busybox-static (no images from the internet),
 * and OCI bundles around it. The rootfs is built once per machine and shared read-only by tests;
 * a test that writes to its rootfs gets a private copy.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spec } from '../../src/runtime/spec.ts';

export const CACHE = process.env.PIER_TEST_CACHE ?? '/var/cache/pier-test';

/** Path of a shared busybox rootfs (built on first use). */
export function busyboxRootfs(): string {
  const dir = join(CACHE, 'busybox-rootfs');
  if (existsSync(join(dir, 'bin', 'sh'))) return dir;
  mkdirSync(CACHE, { recursive: true });
  const tmp = mkdtempSync(join(CACHE, '.rootfs-'));
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'var', 'run']) {
    mkdirSync(join(tmp, d), { recursive: true });
  }
  cpSync('/bin/busybox', join(tmp, 'bin/busybox'));
  const applets = execFileSync('/bin/busybox', ['--list-full'], { encoding: 'utf8' }).trim().split('\n');
  for (const a of applets) {
    const p = join(tmp, a);
    if (!existsSync(p)) symlinkSync('/bin/busybox', p);
  }
  writeFileSync(join(tmp, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(tmp, 'etc/group'), 'root:x:0:\nnobody:x:65534:\n');
  // mkdtemp makes 0700; a rootfs must be traversable by non-root and user-namespaced containers.
  chmodSync(tmp, 0o755);
  try { renameSync(tmp, dir); } catch { rmSync(tmp, { recursive: true, force: true }); }
  return dir;
}

/** A minimal spec like `pier-runtime spec` gives, without seccomp, running args. */
export function baseSpec(args: string[] = ['sh']): Spec {
  return {
    ociVersion: '1.2.0',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        effective: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        permitted: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'pier',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/**
 * Make a bundle dir with config.json. The rootfs is a symlink-free bind of the shared one unless
 * `writable` asks for a private copy.
 */
export function makeBundle(spec: Spec, opts: { writable?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'pier-bundle-'));
  const src = busyboxRootfs();
  if (opts.writable) {
    execFileSync('cp', ['-a', src, join(dir, 'rootfs')]);
    spec = { ...spec, root: { path: 'rootfs', readonly: false } };
  } else {
    spec = { ...spec, root: { path: src, readonly: spec.root?.readonly ?? true } };
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}
