/** `pier volume create|ls|rm|inspect|prune`: named volumes. */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import type { VolumeInfo } from '../../engine/index.ts';
import { bool, list, str } from '../args.ts';
import { table } from '../table.ts';
import { checkFormat, client, command, keyValues, parse, printJson, q } from './common.ts';

const USAGE = `usage: pier volume COMMAND

commands:
  create [-l K=V] [NAME]
  ls [-q] [--format json]
  rm [-f] NAME...
  inspect NAME...
  prune
`;

export function volumeMain(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  return command(`volume ${sub ?? ''}`.trim(), USAGE, rest, async () => {
    if (!sub || sub === '--help' || sub === '-h') { writeStdout(USAGE); return sub ? 0 : 1; }
    const c = client();
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
      case 'rm':
      case 'remove': {
        const p = parse(rest, [{ name: 'force', short: 'f' }], 'volume rm');
        if (p.rest.length === 0) throw new PierError('give at least one volume');
        for (const v of p.rest) { await c.json('DELETE', `/volumes/${q(v)}`); writeStdout(`${v}\n`); }
        return 0;
      }
      case 'inspect': {
        const p = parse(rest, [], 'volume inspect');
        if (p.rest.length === 0) throw new PierError('give at least one volume');
        printJson(await Promise.all(p.rest.map((v) => c.json('GET', `/volumes/${q(v)}`))));
        return 0;
      }
      case 'prune': {
        const r = await c.json<{ removed: string[] }>('POST', '/volumes/prune');
        writeStdout(r.removed.map((n) => `Deleted volume ${n}\n`).join(''));
        return 0;
      }
      default:
        throw new PierError(`unknown command ${JSON.stringify(sub)} (see pier volume --help)`);
    }
  });
}
