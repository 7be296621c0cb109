/**
 * `pier run [flags] IMAGE [COMMAND [ARG…]]`: create and start a container. Detached (-d) it prints
 * the id; otherwise it streams the run's output (from the daemon, which reads the container's log
 * from its first line), sends stdin with -i through the container's shim, forwards SIGINT/SIGTERM,
 * and exits with the container's status. A container that fails to start is removed again.
 */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import { connectShim, type ContainerInfo, type EngineClient, type ExitInfo, type ShimClient, type StreamLine } from '../../engine/index.ts';
import { bool } from '../args.ts';
import { client, command, parse, q } from './common.ts';
import { CREATE_FLAGS, CREATE_USAGE_FLAGS, createContainer, pullPolicy, requestFrom } from './create.ts';

const USAGE = `usage: pier run [flags] IMAGE [COMMAND [ARG...]]

  -d, --detach             run in the background and print the container id
${CREATE_USAGE_FLAGS}`;

export function runMain(argv: string[]): Promise<number> {
  return command('run', USAGE, argv, async () => {
    const p = parse(argv, [...CREATE_FLAGS, { name: 'detach', short: 'd' }], 'run', true);
    const req = requestFrom(p);
    const detach = bool(p, 'detach');
    if (detach && req.autoRemove && req.stdin) throw new PierError('-d with -i and --rm: nobody could attach');
    const c = client();
    const { id } = await createContainer(c, req, pullPolicy(p));
    if (detach) {
      try {
        await c.json('POST', `/containers/${id}/start`);
      } catch (err) {
        await c.json('DELETE', `/containers/${id}?force=1&v=1`).catch(() => undefined);
        throw err;
      }
      writeStdout(`${id}\n`);
      return 0;
    }
    return attachRun(c, id, { stdin: req.stdin ?? false, tty: req.tty ?? false, removeOnStartFailure: true });
  });
}

/** Start `id`, stream its output and exit; shared by `run` and `start -a`. */
export async function attachRun(c: EngineClient, id: string, opts: { stdin: boolean; tty: boolean; removeOnStartFailure: boolean }): Promise<number> {
  let exit: ExitInfo | undefined;
  let shim: ShimClient | undefined;
  let restoreTty = () => {};
  const forward = (sig: NodeJS.Signals) => { void c.json('POST', `/containers/${id}/kill?signal=${q(sig)}`).catch(() => undefined); };
  const signals: NodeJS.Signals[] = opts.tty ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, forward);
  try {
    let stream: AsyncGenerator<StreamLine>;
    try {
      stream = c.stream('POST', `/containers/${id}/start?attach=1`);
      const first = await stream.next();
      if (first.done) throw new PierError('pierd ended the stream before the container started');
      if ('error' in first.value) throw new PierError(first.value.error);
    } catch (err) {
      if (opts.removeOnStartFailure) await c.json('DELETE', `/containers/${id}?force=1&v=1`).catch(() => undefined);
      throw err;
    }
    if (opts.stdin) {
      const info = await c.json<ContainerInfo>('GET', `/containers/${id}`);
      shim = await connectShim(info.shimSocket).catch(() => undefined);
      if (shim) {
        if (opts.tty && process.stdin.isTTY) {
          process.stdin.setRawMode(true);
          restoreTty = () => process.stdin.setRawMode(false);
          const resize = () => shim?.resize(process.stdout.columns ?? 80, process.stdout.rows ?? 24);
          process.stdout.on('resize', resize);
          resize();
        }
        void shim.attach({ stdin: process.stdin }).catch(() => undefined);
      }
    }
    for await (const line of stream) {
      if ('entry' in line) {
        (line.entry.stream === 'stderr' ? process.stderr : process.stdout).write(line.entry.log);
      } else if ('exit' in line) {
        exit = line.exit;
      } else if ('error' in line) {
        throw new PierError(line.error);
      }
    }
  } finally {
    for (const s of signals) process.off(s, forward);
    restoreTty();
    shim?.close();
    process.stdin.unref?.();
    if (opts.stdin) process.stdin.destroy();
  }
  if (!exit) throw new PierError('lost the connection to pierd before the container exited');
  if (exit.error) throw new PierError(exit.error, { exitCode: exit.exitCode || 125 });
  return exit.exitCode;
}
