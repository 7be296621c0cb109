/**
 * `pier run [flags] IMAGE [COMMAND [ARG…]]`: create and start a container. Detached (-d) it prints
 * the id; otherwise it streams the run's output (from the daemon, which reads the container's log
 * from its first line), sends stdin with -i through the container's shim, forwards SIGINT/SIGTERM/
 * SIGHUP (exiting 128+N itself when they cannot be delivered, and at the third SIGINT/SIGTERM),
 * and exits with the container's status. A container that fails to start is removed again.
 */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import { constants as osConstants } from 'node:os';
import { EngineClient, connectShim, type ContainerInfo, type ExitInfo, type ShimClient, type StreamLine } from '../../engine/index.ts';
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

/** How long a proxied signal may go unanswered before pierd counts as unreachable. */
const KILL_ANSWER_MS = 5000;
/** docker's rule: the third SIGINT/SIGTERM ends the CLI however the container takes them. */
const FORCE_AFTER = 3;

/**
 * Start `id`, stream its output and exit; shared by `run` and `start -a`.
 *
 * Signals are proxied to the container, as docker's --sig-proxy does: the container decides, and
 * its exit ends the stream. This command exits on its own with 128+N when the signal cannot be
 * delivered (the container is gone or not running, pierd does not answer) and at the third
 * SIGINT/SIGTERM, leaving the container as it is. pierd ends the stream itself when the container
 * is removed (with the exit, or `container NAME was removed`).
 */
export async function attachRun(c: EngineClient, id: string, opts: { stdin: boolean; tty: boolean; removeOnStartFailure: boolean }): Promise<number> {
  let exit: ExitInfo | undefined;
  let shim: ShimClient | undefined;
  let restoreTty = () => {};
  // ends everything this command waits on (the stream, proxied kills) once it gives up
  const quit = new AbortController();
  let forced: number | undefined;
  const giveUp = (code: number) => { if (forced === undefined) { forced = code; quit.abort(); } };
  // never starts a daemon: a new pierd would not be the one streaming this run
  const proxy = new EngineClient({ paths: c.paths, autoStart: false });
  let interrupts = 0;
  const forward = (sig: NodeJS.Signals) => {
    const code = 128 + (osConstants.signals[sig] ?? 15);
    if ((sig === 'SIGINT' || sig === 'SIGTERM') && ++interrupts >= FORCE_AFTER) { giveUp(code); return; }
    const unanswered = AbortSignal.timeout(KILL_ANSWER_MS);
    proxy.json('POST', `/containers/${id}/kill?signal=${q(sig)}`, undefined, { signal: AbortSignal.any([unanswered, quit.signal]) })
      .catch(() => giveUp(code));
  };
  const signals: NodeJS.Signals[] = opts.tty ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, forward);
  try {
    let stream: AsyncGenerator<StreamLine>;
    try {
      stream = c.stream('POST', `/containers/${id}/start?attach=1`, undefined, { signal: quit.signal });
      const first = await stream.next();
      if (first.done) throw new PierError('pierd ended the stream before the container started');
      if ('error' in first.value) throw new PierError(first.value.error);
    } catch (err) {
      if (forced !== undefined) return forced;
      if (opts.removeOnStartFailure) await c.json('DELETE', `/containers/${id}?force=1&v=1`).catch(() => undefined);
      throw err;
    }
    if (opts.stdin) {
      const info = await c.json<ContainerInfo>('GET', `/containers/${id}`, undefined, { signal: quit.signal });
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
    try {
      for await (const line of stream) {
        if ('entry' in line) {
          (line.entry.stream === 'stderr' ? process.stderr : process.stdout).write(line.entry.log);
        } else if ('exit' in line) {
          exit = line.exit;
        } else if ('error' in line) {
          throw new PierError(line.error);
        }
      }
    } catch (err) {
      if (forced === undefined) throw err;
    }
    if (forced !== undefined && !exit) return forced;
  } catch (err) {
    if (forced !== undefined) return forced;
    throw err;
  } finally {
    for (const s of signals) process.off(s, forward);
    quit.abort();
    restoreTty();
    shim?.close();
    process.stdin.unref?.();
    if (opts.stdin) process.stdin.destroy();
  }
  if (!exit) throw new PierError('lost the connection to pierd before the container exited');
  if (exit.error) throw new PierError(exit.error, { exitCode: exit.exitCode || 125 });
  return exit.exitCode;
}
