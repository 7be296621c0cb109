/** `pier top CONTAINER`: the container's processes. */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import { str } from '../args.ts';
import { table } from '../table.ts';
import { checkFormat, client, command, parse, printJson, q } from './common.ts';

export function topMain(argv: string[]): Promise<number> {
  return command('top', 'usage: pier top [--format json] CONTAINER\n', argv, async () => {
    const p = parse(argv, [{ name: 'format', value: true }], 'top');
    if (p.rest.length !== 1) throw new PierError('give one container');
    const t = await client().json<{ titles: string[]; processes: string[][] }>('GET', `/containers/${q(p.rest[0])}/top`);
    if (checkFormat(str(p, 'format')) === 'json') printJson(t);
    else writeStdout(table([t.titles, ...t.processes]));
    return 0;
  });
}
