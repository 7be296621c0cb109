/**
 * Hooks that run in the runtime namespace (prestart, createRuntime, poststart, poststop): the hook
 * gets the container state on stdin, its args/env from the spec, and is killed at its timeout.
 * createContainer and startContainer run inside the container and are executed by the helper.
 */
import { PierError } from '../common/errors.ts';
import { childProcess } from '../common/lazy.ts';
import type { Hook, State } from './spec.ts';

export type HostHookPhase = 'prestart' | 'createRuntime' | 'poststart' | 'poststop';

export async function runHook(phase: string, index: number, hook: Hook, state: State): Promise<void> {
  const args = hook.args?.length ? hook.args : [hook.path];
  const what = `${phase} hook #${index} (${hook.path})`;
  await new Promise<void>((resolve, reject) => {
    let child;
    try {
      child = childProcess().spawn(hook.path, args.slice(1), {
        argv0: args[0],
        env: Object.fromEntries((hook.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
        stdio: ['pipe', 'ignore', 'pipe'],
      });
    } catch (err) {
      reject(new PierError(`${what}: ${(err as Error).message}`));
      return;
    }
    let stderr = '';
    let timedOut = false;
    const timer = hook.timeout ? setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, hook.timeout * 1000) : undefined;
    child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 4096) stderr += d.toString(); });
    child.stdin!.on('error', () => { /* the hook may not read its stdin */ });
    child.stdin!.end(JSON.stringify(state));
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new PierError(`${what}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (timedOut) return reject(new PierError(`${what} timed out after ${hook.timeout}s`));
      if (code === 0) return resolve();
      const detail = stderr.trim().split('\n').pop() ?? '';
      reject(new PierError(`${what} failed: ${signal ? `killed by ${signal}` : `exit status ${code}`}${detail ? `: ${detail}` : ''}`));
    });
  });
}

/** Run every hook of a phase in order; the first failure stops the rest and is thrown. */
export async function runHooks(phase: HostHookPhase, hooks: Hook[] | undefined, state: State): Promise<void> {
  for (const [i, h] of (hooks ?? []).entries()) await runHook(phase, i, h, state);
}
