/**
 * What bench/engine.ts and bench/cp.ts share: a private pier (its own root, run dir and default
 * bridge) and a private podman 4.3 (its own storage, runc, cgroupfs, docker's ulimits), the same
 * busybox image in both, and teardown that leaves nothing of either.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeBridge } from '../test/helpers/engine.ts';

export interface Peers {
  dir: string;
  pierBin: string;
  pierEnv: NodeJS.ProcessEnv;
  podmanBase: string[];
  podmanEnv: NodeJS.ProcessEnv;
  pier(args: string[]): string;
  podman(args: string[]): string;
  /** Stop pierd, reset podman, remove the bridge, mounts and the dir. */
  close(): void;
}

export function must(bin: string, args: string[], env: NodeJS.ProcessEnv): string {
  const r = spawnSync(bin, args, { env, encoding: 'utf8', timeout: 300_000, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** `name` names the dir and must be lower case (podman takes the oci: path as part of an image name). */
export function peers(name: string, bridge: string, subnet: string, pierBin: string): Peers {
  const dir = `/var/tmp/pier-bench-${name}-${process.pid}`;
  mkdirSync(dir);
  const pierEnv = { ...process.env, PIER_ROOT: join(dir, 'pier-root'), PIER_RUN: join(dir, 'pier-run'), PIER_BRIDGE: bridge, PIER_BRIDGE_SUBNET: subnet };
  const conf = join(dir, 'containers.conf');
  writeFileSync(conf, '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n');
  const podmanEnv = { ...process.env, CONTAINERS_CONF: conf };
  const podmanBase = ['--root', join(dir, 'podman-root'), '--runroot', join(dir, 'podman-runroot'), '--storage-driver', 'overlay',
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc'];
  const p: Peers = {
    dir, pierBin, pierEnv, podmanBase, podmanEnv,
    pier: (args) => must(pierBin, args, pierEnv),
    podman: (args) => must('podman', [...podmanBase, ...args], podmanEnv),
    close: () => {
      spawnSync(pierBin, ['rm', '-f', ...spawnSync(pierBin, ['ps', '-aq'], { env: pierEnv, encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean)], { env: pierEnv });
      const pid = spawnSync('cat', [join(dir, 'pier-run', 'pierd.pid')], { encoding: 'utf8' }).stdout.trim();
      if (pid) try { process.kill(Number(pid), 'SIGTERM'); } catch { /* gone */ }
      spawnSync('podman', [...podmanBase, 'rm', '-f', '-t', '0', '--all'], { env: podmanEnv });
      spawnSync('podman', [...podmanBase, 'system', 'reset', '--force'], { env: podmanEnv });
      removeBridge(bridge);
      for (const m of spawnSync('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/self/mountinfo | sort -r`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) spawnSync('umount', ['-l', m.trim()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return p;
}

/** busybox made by pier, and the same image in podman as localhost/busybox. */
export function busyboxInBoth(p: Peers): void {
  p.pier(['image', 'bootstrap', 'busybox']);
  p.pier(['image', 'export', '--output', join(p.dir, 'busybox-oci'), '--format', 'oci-dir', 'busybox']);
  p.podman(['pull', '-q', `oci:${join(p.dir, 'busybox-oci')}:latest`]);
  p.podman(['tag', p.podman(['images', '-q']).trim().split('\n')[0], 'localhost/busybox:latest']);
}
