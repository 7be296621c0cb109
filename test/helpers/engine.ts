/**
 * An isolated engine for CLI tests: its own PIER_ROOT/PIER_RUN, its own default bridge and subnet
 * (so a real pierd on this machine is untouched), a busybox image, and teardown that removes
 * every container, network and mount it made.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOP } from './pier.ts';

export const PIER = join(TOP, 'bin', 'pier');

export interface TestEngine {
  root: string;
  run: string;
  env: NodeJS.ProcessEnv;
  bridge: string;
  /** Run the CLI to completion. */
  pier(args: string[], opts?: { input?: string; timeout?: number }): { status: number | null; stdout: string; stderr: string };
  /** Like pier() but without blocking the event loop. */
  pierAsync(args: string[], opts?: { input?: string; timeout?: number }): Promise<{ status: number | null; stdout: string; stderr: string }>;
  /** pier() that throws with stderr unless the exit status is 0; returns stdout. */
  ok(args: string[], opts?: { input?: string; timeout?: number }): string;
  daemonPid(): number | undefined;
  inspect(ref: string): any;
  close(): Promise<void>;
}

let counter = 0;

export function testEngine(opts: { bridge?: string; subnet?: string } = {}): TestEngine {
  const root = mkdtempSync(join(tmpdir(), 'pier-engine-root-'));
  const run = mkdtempSync(join(tmpdir(), 'pier-engine-run-'));
  const n = (process.pid + counter++) % 200;
  const bridge = opts.bridge ?? `piert${n}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PIER_ROOT: root,
    PIER_RUN: run,
    PIER_BRIDGE: bridge,
    PIER_BRIDGE_SUBNET: opts.subnet ?? `10.84.${n}.0/24`,
  };
  const pier = (args: string[], o: { input?: string; timeout?: number } = {}) => {
    const r = spawnSync(PIER, args, { env, encoding: 'utf8', input: o.input ?? '', timeout: o.timeout ?? 60_000, killSignal: 'SIGKILL' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const pierAsync = (args: string[], o: { input?: string; timeout?: number } = {}) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const c = spawn(PIER, args, { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: o.timeout ?? 60_000, killSignal: 'SIGKILL' });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d; });
    c.stderr.on('data', (d: Buffer) => { stderr += d; });
    c.on('error', reject);
    c.on('close', (status) => resolve({ status, stdout, stderr }));
    c.stdin.end(o.input ?? '');
  });
  const ok = (args: string[], o?: { input?: string; timeout?: number }) => {
    const r = pier(args, o);
    if (r.status !== 0) throw new Error(`pier ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  const daemonPid = () => {
    try { return Number(readFileSync(join(run, 'pierd.pid'), 'utf8')); } catch { return undefined; }
  };
  const boot = pier(['image', 'bootstrap', 'busybox']);
  if (boot.status !== 0) throw new Error(`bootstrap busybox: ${boot.stderr}`);
  return {
    root, run, env, bridge, pier, pierAsync, ok, daemonPid,
    inspect: (ref) => JSON.parse(ok(['inspect', '--type', 'container', ref]))[0],
    close: async () => {
      const ids = pier(['ps', '-aq']).stdout.split('\n').filter(Boolean);
      if (ids.length) pier(['rm', '-f', '-v', ...ids]);
      for (const net of pier(['network', 'ls', '--format', 'json']).stdout ? JSON.parse(pier(['network', 'ls', '--format', 'json']).stdout || '[]') as { name: string }[] : []) {
        if (net.name !== 'bridge') pier(['network', 'rm', net.name]);
      }
      const pid = daemonPid();
      if (pid) {
        try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
        for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
      }
      // The default network's bridge and masquerade rule are the daemon's to keep; tests remove theirs.
      removeBridge(bridge);
      unmountUnder(root);
      rmSync(root, { recursive: true, force: true });
      rmSync(run, { recursive: true, force: true });
    },
  };
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Mount points at or below dir, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m && (m === dir || m.startsWith(`${dir}/`))).sort((a, b) => b.length - a.length);
}

export function unmountUnder(dir: string): void {
  for (const m of mountsUnder(dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}

/** Network namespaces pier made (named pier-*). */
export function pierNetns(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith('pier-')) : [];
}

/** Interfaces enslaved to a bridge. */
export function bridgePorts(bridge: string): string[] {
  const dir = `/sys/class/net/${bridge}/brif`;
  return existsSync(dir) ? readdirSync(dir) : [];
}

export function iptablesRules(): string[] {
  const r = spawnSync('iptables-save', [], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.startsWith('-A'));
}

export async function until<T>(fn: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Delete a bridge and every iptables rule that names it (what a test engine's default network left). */
export function removeBridge(bridge: string): void {
  for (const table of ['nat', 'filter']) {
    const rules = spawnSync('iptables-save', ['-t', table], { encoding: 'utf8' }).stdout.split('\n')
      .filter((l) => l.startsWith('-A ') && (l.includes(` -o ${bridge} `) || l.includes(` -i ${bridge} `)));
    for (const r of rules) {
      // iptables-save quotes comments; split on spaces outside quotes.
      const args = (r.match(/"[^"]*"|\S+/g) ?? []).map((a) => a.replace(/^"|"$/g, ''));
      args[0] = '-D';
      spawnSync('iptables', ['-w', '-t', table, ...args], { stdio: 'ignore' });
    }
  }
  spawnSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
}
