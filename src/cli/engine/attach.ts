/**
 * `pier attach [--no-stdin] [--sig-proxy=false] CONTAINER`: attach this command's stdio to a running
 * container (docker's attach) through pierd's hijacked attach stream: output from now on, stdin
 * when the container was made with -i (and no other client holds it), terminal resizes, and the
 * container's exit status as this command's. Closing the connection (this command ending) detaches.
 * Without a terminal, SIGINT/SIGTERM/SIGHUP are sent to the container (--sig-proxy, docker's
 * default); with one the keys go to the container's terminal as typed.
 */
import { PierError } from '../../common/errors.ts';
import type { ContainerInfo } from '../../engine/index.ts';
import { bool, str } from '../args.ts';
import { client, command, parse, q } from './common.ts';
import { relayStream } from './exec-stdio.ts';

const USAGE = `usage: pier attach [flags] CONTAINER

      --no-stdin          do not attach stdin
      --sig-proxy=false   do not send SIGINT/SIGTERM/SIGHUP to the container (no terminal)
`;

export function attachMain(argv: string[]): Promise<number> {
  return command('attach', USAGE, argv, async () => {
    const p = parse(argv, [{ name: 'no-stdin' }, { name: 'sig-proxy', value: true }], 'attach');
    if (p.rest.length !== 1) throw new PierError('give one container');
    const sigProxy = str(p, 'sig-proxy') ?? 'true';
    if (sigProxy !== 'true' && sigProxy !== 'false') throw new PierError(`--sig-proxy: expected true or false, not ${JSON.stringify(sigProxy)}`);
    const c = client();
    const info = await c.json<ContainerInfo>('GET', `/containers/${q(p.rest[0])}`);
    const tty = info.config.tty ?? false;
    const stdin = !bool(p, 'no-stdin') && (info.config.stdin ?? false);
    const { socket } = await c.hijack('POST', `/containers/${info.id}/attach?stream=1&stdin=${stdin ? 1 : 0}&stdout=1&stderr=1`);
    const forward = (sig: NodeJS.Signals) => { void c.json('POST', `/containers/${info.id}/kill?signal=${sig}`).catch(() => undefined); };
    const signals: NodeJS.Signals[] = sigProxy === 'true' && !tty ? ['SIGINT', 'SIGTERM', 'SIGHUP'] : [];
    for (const s of signals) process.on(s, forward);
    try {
      const end = await relayStream(socket, { stdin, tty, initialResize: true });
      if (!end) throw new PierError(`lost the connection to pierd before container ${info.name} exited`);
      if (end.error) throw new PierError(end.error, { exitCode: end.exitCode || 125 });
      return end.exitCode;
    } finally {
      for (const s of signals) process.off(s, forward);
    }
  });
}
