/** `pier volume create|ls|rm|inspect|prune`: named volumes. */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import type { VolumeInfo } from '../../engine/index.ts';
import { bool, list, str } from '../args.ts';
import { table } from '../table.ts';
import { checkFormat, keyValues, objectVerb, parse, printJson, subcommands } from './common.ts';

const USAGE = `usage: pier volume COMMAND

commands:
  create [-l K=V] [NAME]
  ls [-q] [--format json]
  rm [-f] NAME...
  inspect NAME...
  prune
`;

export function volumeMain(argv: string[]): Promise<number> {
  return subcommands('volume', USAGE, argv, async (c, sub, rest) => {
    switch (sub) {
      case 'create': {
        const p = parse(rest, [{ name: 'label', short: 'l', value: true, multi: true }, { name: 'driver', short: 'd', value: true }], 'volume create');
        if (p.rest.length > 1) throw new PierError('give at most one volume name');
        const driver = str(p, 'driver');
        if (driver && driver !== 'local') throw new PierError(`unsupported volume driver ${JSON.stringify(driver)}: pier has local`);
        const labels = keyValues(list(p, 'label'), 'label');
        const v = await c.json<VolumeInfo>('POST', '/volumes', { ...(p.rest[0] ? { name: p.rest[0] } : {}), labels });
        writeStdout(`${v.name}\n`);
        return 0;
      }
      case 'ls':
      case 'list': {
        const p = parse(rest, [{ name: 'quiet', short: 'q' }, { name: 'format', value: true }], 'volume ls');
        const vols = await c.json<VolumeInfo[]>('GET', '/volumes');
        if (bool(p, 'quiet')) writeStdout(vols.map((v) => `${v.name}\n`).join(''));
        else if (checkFormat(str(p, 'format')) === 'json') printJson(vols);
        else writeStdout(table([['DRIVER', 'VOLUME NAME'], ...vols.map((v) => [v.driver, v.name])]));
        return 0;
      }
      default:
        return objectVerb(c, 'volume', sub, rest, [{ name: 'force', short: 'f' }]);
    }
  });
}
