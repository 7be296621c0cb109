/** Paths and small runners for tests that drive the built CLI (bin/pier-runtime). */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TOP = join(import.meta.dirname, '..', '..');
export const PIER_RUNTIME = join(TOP, 'bin', 'pier-runtime');

/** Run pier-runtime with a private --root; returns the spawnSync result with text output. */
export function pr(root: string, args: string[], opts: { input?: string; timeout?: number } = {}): SpawnSyncReturns<string> {
  const argv = ['--root', root, ...args];
  const detaches = args[0] === 'create' || (args[0] === 'run' && (args.includes('-d') || args.includes('--detach')));
  if (!detaches) return spawnSync(PIER_RUNTIME, argv, { encoding: 'utf8', input: opts.input, timeout: opts.timeout ?? 30_000 });
  // A detached container inherits our stdio, as with runc: pipes would stay open for its whole life
  // and spawnSync would wait for them. Files do not.
  const dir = mkdtempSync(join(tmpdir(), 'pier-out-'));
  const out = openSync(join(dir, 'out'), 'w+'), err = openSync(join(dir, 'err'), 'w+');
  try {
    const r = spawnSync(PIER_RUNTIME, argv, { encoding: 'utf8', stdio: ['ignore', out, err], timeout: opts.timeout ?? 30_000 });
    return { ...r, stdout: readFileSync(join(dir, 'out'), 'utf8'), stderr: readFileSync(join(dir, 'err'), 'utf8') };
  } finally {
    closeSync(out);
    closeSync(err);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Like pr() but throws with stderr when the exit status is not 0. */
export function prOk(root: string, args: string[], opts: { input?: string; timeout?: number } = {}): string {
  const r = pr(root, args, opts);
  if (r.status !== 0) throw new Error(`pier-runtime ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Every cgroup dir whose name matches, under any hierarchy (for leak checks). */
export function cgroupDirsMatching(re: RegExp): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return;
    let entries;
    try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (re.test(e.name)) found.push(p);
      walk(p, depth + 1);
    }
  };
  if (existsSync('/sys/fs/cgroup')) walk('/sys/fs/cgroup', 0);
  return found;
}

/**
 * Run `bin/pier` without blocking the event loop (servers and proxies in the test process must keep
 * serving), with PIER_ROOT set; `input` goes to its stdin.
 */
export function pierAsync(root: string, args: string[], input?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return spawnAsync(join(TOP, 'bin', 'pier'), args, { env: { ...process.env, PIER_ROOT: root }, ...(input !== undefined ? { input } : {}) });
}

/** Any program, without blocking the event loop (a server in the test process answers it). */
export function spawnAsync(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const { input } = opts;
  return new Promise((resolve, reject) => {
    const c = spawn(file, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeout ?? 60_000 });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d; });
    c.stderr.on('data', (d: Buffer) => { stderr += d; });
    c.on('error', reject);
    c.on('close', (status) => resolve({ status, stdout, stderr }));
    c.stdin.end(input ?? '');
  });
}
