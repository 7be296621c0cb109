/**
 * `pier daemon`: run pierd in the foreground (the CLI also starts it on demand, detached).
 * SIGTERM/SIGINT stop the daemon; containers keep running and are taken over by the next one.
 */
import { Logger, writeStderr } from '../../common/log.ts';
import { startDaemon } from '../../engine/index.ts';
import { command, parse } from './common.ts';
import { str } from '../args.ts';

const USAGE = `usage: pier daemon [--log-format text|json]

Serves the engine API on $PIER_RUN/pier.sock (default /run/pier/pier.sock); state in $PIER_ROOT
(default /var/lib/pier).
`;

export function daemonMain(argv: string[]): Promise<number> {
  return command('daemon', USAGE, argv, async () => {
    const p = parse(argv, [{ name: 'log-format', value: true }], 'daemon');
    const fmt = str(p, 'log-format') === 'json' ? 'json' : 'text';
    const log = new Logger({ format: fmt });
    const d = await startDaemon({ log });
    process.on('SIGPIPE', () => {});
    process.on('SIGHUP', () => {});
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        writeStderr(`pierd: ${sig}: stopping (containers keep running)\n`);
        void d.stop().then(resolve, resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  });
}
