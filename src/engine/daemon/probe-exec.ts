/**
 * The health monitor's real ProbeExec (health.ts): run the probe in the container from pierd, as
 * `pier exec` does today — the runtime library's exec for pier's runtime, `<binary> exec` for a
 * runc-compatible one — with the container's process settings (env, cwd, user) and the probe's
 * args, no terminal, stdin from /dev/null and stdout+stderr into one temporary file whose first
 * 4096 bytes are the output (docker keeps no more). At the timeout the process is SIGKILLed.
 *
 * This goes through the shims' task API once that exists (issue 11's task branch); until then it is
 * the one place that runs probes.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, signalProcess, type Spec } from '../../runtime/index.ts';
import type { ContainerInfo } from '../api.ts';
import { MAX_OUTPUT, type ProbeExec } from './health.ts';
import { runtimeBinaryOf } from './runtime.ts';

export function runtimeProbeExec(find: (id: string) => ContainerInfo | undefined, dirOf: (id: string) => string): ProbeExec {
  return async (id, cmd, timeoutMs) => {
    const rec = find(id);
    if (!rec) throw new Error(`container ${id.slice(0, 12)} is gone`);
    const spec = JSON.parse(readFileSync(join(dirOf(id), 'bundle', 'config.json'), 'utf8')) as Spec;
    const base = spec.process!;
    const tmp = mkdtempSync(join(tmpdir(), 'pier-probe-'));
    const outPath = join(tmp, 'out');
    const out = openSync(outPath, 'w+', 0o600);
    const nul = openSync('/dev/null', 'r');
    let pid = 0;
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; if (pid > 0) signalProcess(pid, 9); }, timeoutMs);
    timer.unref();
    try {
      let exitCode: number;
      const bin = runtimeBinaryOf(rec);
      if (bin) {
        const pidFile = join(tmp, 'pid');
        const args = ['--root', rec.runtimeRoot, 'exec', '--pid-file', pidFile, '--cwd', base.cwd, '--user', `${base.user.uid}:${base.user.gid}`,
          ...(base.env ?? []).flatMap((e) => ['--env', e]), id, ...cmd];
        const child = spawn(bin, args, { stdio: [nul, out, out] });
        const poll = setInterval(() => { if (!pid) { try { pid = Number(readFileSync(pidFile, 'utf8')); if (timedOut && pid > 0) signalProcess(pid, 9); } catch { /* not yet */ } } }, 50);
        try {
          exitCode = await new Promise<number>((resolve, reject) => {
            child.on('error', reject);
            child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 + 9 : 1)));
          });
        } finally { clearInterval(poll); }
      } else {
        const rt = new Runtime({ root: rec.runtimeRoot });
        const r = await rt.exec(id, {
          process: { ...base, args: cmd, terminal: false },
          stdio: [nul, out, out],
          onPid: (p) => { pid = p; if (timedOut) signalProcess(p, 9); },
        });
        exitCode = r.exitCode ?? 0;
      }
      const buf = Buffer.alloc(MAX_OUTPUT);
      const n = readSync(out, buf, 0, MAX_OUTPUT, 0);
      return { exitCode, output: buf.subarray(0, n).toString() };
    } finally {
      clearTimeout(timer);
      closeSync(out);
      closeSync(nul);
      rmSync(tmp, { recursive: true, force: true });
    }
  };
}
