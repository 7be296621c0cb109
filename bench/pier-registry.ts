/** `bin/pier registry serve` as a child process on a free loopback port, for the registry benches. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const TOP = join(import.meta.dirname, '..');

export interface PierRegistry { host: string; pid: number; stop(): Promise<void> }

/** Serve `storage` (access log off); `extra` adds flags such as --tls-cert/--tls-key. */
export async function startPierRegistry(storage: string, extra: string[] = []): Promise<PierRegistry> {
  const proc = spawn(join(TOP, 'bin', 'pier'), ['registry', 'serve', '--listen', '127.0.0.1:0', '--storage', storage, '--access-log', 'none', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const host = await new Promise<string>((resolve, reject) => {
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on https?:\/\/(\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.once('exit', (code) => reject(new Error(`pier registry serve exited ${code}`)));
  });
  return {
    host,
    pid: proc.pid!,
    stop: () => new Promise<void>((r) => { if (proc.exitCode !== null) return r(); proc.once('exit', () => r()); proc.kill('SIGTERM'); }),
  };
}
