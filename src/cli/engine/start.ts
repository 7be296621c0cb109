/** `pier start [-a] [-i] CONTAINER…`: start stopped containers; -a streams the (single) container's output and exit. */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import type { ContainerInfo } from '../../engine/index.ts';
import { bool } from '../args.ts';
import { client, command, parse, q } from './common.ts';
import { attachRun } from './run.ts';

const USAGE = `usage: pier start [-a] [-i] CONTAINER [CONTAINER...]

  -a, --attach        stream output and exit with the container's status (one container)
  -i, --interactive   attach stdin
`;

export function startMain(argv: string[]): Promise<number> {
  return command('start', USAGE, argv, async () => {
    const p = parse(argv, [{ name: 'attach', short: 'a' }, { name: 'interactive', short: 'i' }], 'start');
    if (p.rest.length === 0) throw new PierError('give at least one container');
    const c = client();
    if (bool(p, 'attach') || bool(p, 'interactive')) {
      if (p.rest.length !== 1) throw new PierError('--attach takes one container');
      const info = await c.json<ContainerInfo>('GET', `/containers/${q(p.rest[0])}`);
      return attachRun(c, info.id, { stdin: bool(p, 'interactive'), tty: info.config.tty ?? false, removeOnStartFailure: false });
    }
    let failed = 0;
    for (const ref of p.rest) {
      try {
        await c.json('POST', `/containers/${q(ref)}/start`);
        writeStdout(`${ref}\n`);
      } catch (err) {
        failed++;
        process.stderr.write(`pier: start ${ref}: ${(err as Error).message}\n`);
      }
    }
    return failed ? 1 : 0;
  });
}
