/**
 * `pier exec [-i] [-t] [-d] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND [ARG…]`: run a process in a
 * running container. pierd tells where the container is; the process itself is started from this
 * CLI through the runtime (pier's library, or the container's runc-compatible binary).
 *
 * The process never gets this command's own fds: without -t it gets pipes this command relays
 * (exec-stdio.ts; stdin only with -i) and closes once it exits, with -t a pty whose master the
 * runtime holds on the host and relays until the process exits (pier-helper for the library,
 * runc itself for a runc binary), with -d /dev/null. A process it leaves behind keeps only those.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { constants as osConstants, tmpdir } from 'node:os';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import type { ContainerInfo } from '../../engine/index.ts';
import { resolveUser } from '../../image/index.ts';
import { Runtime, type Process, type Spec } from '../../runtime/index.ts';
import { bool, list, str } from '../args.ts';
import { client, command, envArgs, parse, q } from './common.ts';
import { ExecStdio } from './exec-stdio.ts';

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
    if (detach) {
      await rt.exec(info.id, { process: proc, detach, stdio: ['ignore', 'ignore', 'ignore'] });
      writeStdout('');
      return 0;
    }
    if (tty) {
      // pier-helper stays on the host and relays our stdio to the pty master; the process gets
      // only the pty's slave (dup'd over 0-2), and the relay ends when the process exits.
      const r = await rt.exec(info.id, { process: proc, stdio: [0, 1, 2] });
      return r.exitCode ?? 0;
    }
    const io = new ExecStdio({ stdin: bool(p, 'interactive') });
    try {
      // spawned by the time onPid runs (and if it never runs, finish() closes our copies)
      const r = await rt.exec(info.id, { process: proc, stdio: io.slots, onPid: () => io.handedOver() });
      return r.exitCode ?? 0;
    } finally {
      io.finish();
    }
  });
}

/**
 * Through a runc-compatible binary: its `exec`. runc in the foreground without -t gives the process
 * pipes of its own and relays them to its stdio — here our relayed pipes, so not even runc holds
 * this command's fds; with -t runc makes the pty and relays our stdio to it; with -d it hands its
 * own stdio to the process it leaves running, so that gets /dev/null.
 * runc returns only once its output pipes reach EOF (a process left behind that holds them keeps it
 * going), but it has the exit status, so it is waited for. stdin is closed as soon as the process
 * itself is gone, so a left-behind reader gets EOF instead of what the user types.
 */
async function execBinary(info: ContainerInfo, proc: Process, o: { tty: boolean; detach: boolean; interactive: boolean }): Promise<number> {
  const io = o.tty || o.detach ? undefined : new ExecStdio({ stdin: o.interactive });
  const tmp = io && o.interactive ? mkdtempSync(join(tmpdir(), 'pier-exec-')) : undefined;
  const pidFile = tmp ? join(tmp, 'pid') : undefined;
  const args = ['--root', info.runtimeRoot, 'exec', ...(o.tty ? ['-t'] : []), ...(o.detach ? ['-d'] : []), ...(pidFile ? ['--pid-file', pidFile] : []),
    '--cwd', proc.cwd, '--user', `${proc.user.uid}:${proc.user.gid}`, ...proc.env!.flatMap((e) => ['--env', e]), info.id, ...proc.args!];
  const stdio: StdioOptions = o.detach ? ['ignore', 'ignore', 'ignore'] : io ? io.slots : ['inherit', 'inherit', 'inherit'];
  let watch: NodeJS.Timeout | undefined;
  try {
    // The binary pierd started it with (a record of an older pier has only the path in config.runtime).
    const bin = info.runtimePath ?? info.config.runtime!;
    const child = spawn(bin, args, { stdio });
    io?.handedOver();
    if (io && pidFile) {
      // Node cannot wait on a process it did not start: look for it every tick until it is gone.
      let pid = 0;
      watch = setInterval(() => {
        if (!pid) { try { pid = Number(readFileSync(pidFile, 'utf8')); } catch { return; } }
        if (pid > 0 && !alive(pid)) { clearInterval(watch); io.closeInput(); }
      }, 100);
    }
    return await new Promise<number>((resolve, reject) => {
      child.on('error', (err) => reject(new PierError(`${bin}: ${err.message}`)));
      child.on('exit', (code, sig) => resolve(code ?? 128 + (sig ? signalNumber(sig) : 0)));
    });
  } finally {
    if (watch) clearInterval(watch);
    io?.finish();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

/** Running and not yet reaped (a zombie has exited: its status is its parent's to collect). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch { return false; }
}

function signalNumber(sig: NodeJS.Signals): number {
  return osConstants.signals[sig] ?? 15;
}
