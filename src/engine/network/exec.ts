import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

export interface ExecResult { code: number; stdout: string; stderr: string }

/**
 * Run a program, feeding `input` on stdin, collecting its output. At most LIMIT children run at once:
 * 100 concurrent sandboxes would otherwise fork hundreds of Go plugins (each ~10 MB, several threads)
 * at the same moment, which only thrashes a small machine; beyond a few per core nothing gets faster.
 */
const LIMIT = Math.max(4, availableParallelism() * 4);
let running = 0;
const waiting: (() => void)[] = [];

async function slot(): Promise<void> {
  if (running < LIMIT) { running++; return; }
  await new Promise<void>((resolve) => waiting.push(resolve));
}

function release(): void {
  const next = waiting.shift();
  if (next) next(); else running--;
}

export async function run(file: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ExecResult> {
  await slot();
  try {
    return await new Promise<ExecResult>((resolve, reject) => {
      const child = spawn(file, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 60_000 });
      const out: Buffer[] = [], err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (signal ? `killed by ${signal}` : ''),
      }));
      // A program may exit without reading stdin (EPIPE): that is its business, not an error here.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input ?? '');
    });
  } finally {
    release();
  }
}

/** The first line of a program's complaint, for one-line errors. */
export function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
}

/** The blocking form, for the few synchronous entry points (network removal). */
export function runSync(file: string, args: string[]): ExecResult {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? r.error.message : '') };
}
