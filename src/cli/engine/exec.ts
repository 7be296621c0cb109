/**
 * `pier exec [-i] [-t] [-d] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND [ARG…]`: run a process in a
 * running container, through pierd's exec API (docs/engine-api.md): create an exec instance, then
 * start it on a hijacked connection (or detached). pierd has the container's shim start the
 * process (pier's runtime library, or the container's runc-compatible binary) and relays its
 * stdio as frames; this command never touches the runtime or the container's bundle.
 *
 * The process never gets this command's own fds: without -t it gets pipes the shim owns (stdin
 * only with -i) and closes once it exits, with -t a pty whose master stays on the host
 * (pier-helper relays it to the shim), with -d /dev/null. A process it leaves behind keeps only
 * those. The exit status is the process's (128+n for signal n; 126 when the command cannot be
 * run, 127 when it is not found, as docker's).
 */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import type { ExecCreateRequest } from '../../engine/index.ts';
import { bool, list, str } from '../args.ts';
import { client, command, envArgs, parse, q } from './common.ts';
import { relayStream } from './exec-stdio.ts';

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
    const tty = bool(p, 'tty');
    const detach = bool(p, 'detach');
    const interactive = bool(p, 'interactive') && !detach;
    const workdir = str(p, 'workdir');
    if (workdir !== undefined && !workdir.startsWith('/')) throw new PierError(`working directory ${JSON.stringify(workdir)} is not absolute`);
    const user = str(p, 'user');
    const env = envArgs(list(p, 'env'));
    const req: ExecCreateRequest = {
      Cmd: args, Tty: tty, AttachStdin: interactive, AttachStdout: !detach, AttachStderr: !detach,
      ...(env.length ? { Env: env } : {}), ...(workdir ? { WorkingDir: workdir } : {}), ...(user ? { User: user } : {}),
    };
    const c = client();
    const { Id } = await c.json<{ Id: string }>('POST', `/containers/${q(ref)}/exec`, req);
    if (detach) {
      await c.json('POST', `/exec/${Id}/start`, { Detach: true, Tty: tty });
      writeStdout('');
      return 0;
    }
    const size = tty && process.stdout.isTTY && process.stdout.rows && process.stdout.columns ? { ConsoleSize: [process.stdout.rows, process.stdout.columns] } : {};
    const { socket } = await c.hijack('POST', `/exec/${Id}/start`, { Detach: false, Tty: tty, ...size });
    const end = await relayStream(socket, { stdin: interactive, tty });
    if (!end) throw new PierError('lost the connection to pierd before the process exited');
    if (end.error) throw new PierError(end.error, { exitCode: end.exitCode || 126 });
    return end.exitCode;
  });
}
