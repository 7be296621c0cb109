/**
 * A throwaway etcd (Debian's etcd-server, installed by scripts/setup for tests) on loopback: free
 * client and peer ports, a fresh data dir (etcd ignores --initial-* on an existing one), ready when
 * its client port answers. ../shared/notes/orchestration.md has the flags this needs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ETCD = ['/usr/bin/etcd', '/usr/local/bin/etcd'].find((p) => existsSync(p));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

export interface TestEtcd { endpoint: string; stop(): Promise<void> }

export async function startEtcd(): Promise<TestEtcd> {
  if (!ETCD) throw new Error('etcd is not installed (PIER_SETUP_TEST=1 scripts/setup)');
  const dir = mkdtempSync(join(tmpdir(), 'pier-etcd-'));
  const client = await freePort();
  const peer = await freePort();
  const cu = `http://127.0.0.1:${client}`, pu = `http://127.0.0.1:${peer}`;
  const child: ChildProcess = spawn(ETCD, [
    '--name', 'pier-test', '--data-dir', join(dir, 'data'), '--logger', 'zap', '--log-level', 'error',
    '--listen-client-urls', cu, '--advertise-client-urls', cu, '--listen-peer-urls', pu, '--initial-advertise-peer-urls', pu,
    '--initial-cluster', `pier-test=${pu}`, '--initial-cluster-state', 'new',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  for (let i = 0; i < 200 && !(await answers(client)); i++) {
    if (child.exitCode !== null) throw new Error(`etcd exited ${child.exitCode}: ${err.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    endpoint: cu,
    stop: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
