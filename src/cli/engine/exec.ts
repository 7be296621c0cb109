/**
 * `pier exec [-i] [-t] [-d] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND [ARG…]`: run a process in a
 * running container. pierd tells where the container is; the process itself is started from this
 * CLI through the runtime (pier's library, or the container's runc-compatible binary), so the
 * terminal and stdio are this command's own — nothing is relayed through the daemon.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import type { ContainerInfo } from '../../engine/index.ts';
import { resolveUser } from '../../image/index.ts';
import { Runtime, type Process, type Spec } from '../../runtime/index.ts';
import { bool, list, str } from '../args.ts';
import { client, command, envArgs, parse, q } from './common.ts';

const USAGE = `usage: pier exec [flags] CONTAINER COMMAND [ARG...]

  -i, --interactive   keep stdin open        -t, --tty   allocate a terminal
  -d, --detach        run in the background
  -e, --env K=V       set an environment variable (repeatable)
  -w, --workdir DIR   working directory      -u, --user USER[:GROUP]
`;

export function execMain(argv: string[]): Promise<number> {
  return command('exec', USAGE, argv, async () => {
    const p = parse(argv, [
      { name: 'interactive', short: 'i' }, { name: 'tty', short: 't' }, { name: 'detach', short: 'd' },
      { name: 'env', short: 'e', value: true, multi: true }, { name: 'workdir', short: 'w', value: true }, { name: 'user', short: 'u', value: true },
    ], 'exec', true);
    if (p.rest.length < 2) throw new PierError('give a container and a command');
    const [ref, ...args] = p.rest;
    const c = client();
    const info = await c.json<ContainerInfo>('GET', `/containers/${q(ref)}`);
    if (info.state.status === 'paused') throw new PierError(`container ${info.name} is paused: unpause it first`);
    if (info.state.status !== 'running') throw new PierError(`container ${info.name} is not running`);
    const spec = JSON.parse(readFileSync(join(c.paths.containers, info.id, 'bundle', 'config.json'), 'utf8')) as Spec;
    const base = spec.process!;
    const env = new Map<string, string>();
    for (const e of [...(base.env ?? []), ...envArgs(list(p, 'env'))]) { const i = e.indexOf('='); env.set(e.slice(0, i), e); }
    const tty = bool(p, 'tty');
    const user = str(p, 'user');
    const proc: Process = {
      ...base,
      args,
      env: [...env.values()],
      cwd: str(p, 'workdir') ?? base.cwd,
      terminal: tty,
      user: user ? resolveUser(info.rootfs, user) : base.user,
    };
    if (!proc.cwd.startsWith('/')) throw new PierError(`working directory ${JSON.stringify(proc.cwd)} is not absolute`);
    const detach = bool(p, 'detach');
    if (info.config.runtime) return execBinary(info, proc, { tty, detach, interactive: bool(p, 'interactive') });
    const rt = new Runtime({ root: info.runtimeRoot });
    const stdin = bool(p, 'interactive') || tty ? 0 : 'ignore';
    const r = await rt.exec(info.id, { process: proc, detach, stdio: detach ? ['ignore', 'ignore', 'ignore'] : [stdin, 1, 2] });
    if (detach) { writeStdout(''); return 0; }
    return r.exitCode ?? 0;
  });
}

/** Through a runc-compatible binary: its `exec --process`, with our stdio. */
function execBinary(info: ContainerInfo, proc: Process, o: { tty: boolean; detach: boolean; interactive: boolean }): Promise<number> {
  const args = ['--root', info.runtimeRoot, 'exec', ...(o.tty ? ['-t'] : []), ...(o.detach ? ['-d'] : []), '--cwd', proc.cwd,
    '--user', `${proc.user.uid}:${proc.user.gid}`, ...proc.env!.flatMap((e) => ['--env', e]), info.id, ...proc.args!];
  // The binary pierd started it with (a record of an older pier has only the path in config.runtime).
  const bin = info.runtimePath ?? info.config.runtime!;
  const child = spawn(bin, args, { stdio: [o.interactive || o.tty ? 'inherit' : 'ignore', 'inherit', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new PierError(`${bin}: ${err.message}`)));
    child.on('close', (code, sig) => resolve(code ?? 128 + (sig ? 15 : 0)));
  });
}
