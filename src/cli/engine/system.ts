/** `pier system df|prune`: disk use and clean-up across images, containers, volumes and networks. */
import { writeStdout } from '../../common/log.ts';
import { bool, str } from '../args.ts';
import { table } from '../table.ts';
import { checkFormat, humanSize, parse, printJson, subcommands } from './common.ts';

const USAGE = `usage: pier system COMMAND

commands:
  df [--format json]          disk used by images, containers and volumes
  prune [-f] [--volumes]      remove stopped containers, unused networks and unreferenced image data
`;

interface Df { images: { count: number; size: number }; containers: { count: number; running: number; size: number }; volumes: { count: number; size: number } }

export function systemMain(argv: string[]): Promise<number> {
  return subcommands('system', USAGE, argv, async (c, sub, rest) => {
    switch (sub) {
      case 'df': {
        const p = parse(rest, [{ name: 'format', value: true }], 'system df');
        const d = await c.json<Df>('GET', '/system/df');
        if (checkFormat(str(p, 'format')) === 'json') printJson(d);
        else writeStdout(table([['TYPE', 'TOTAL', 'ACTIVE', 'SIZE'],
          ['Images', String(d.images.count), '', humanSize(d.images.size)],
          ['Containers', String(d.containers.count), String(d.containers.running), humanSize(d.containers.size)],
          ['Local Volumes', String(d.volumes.count), '', humanSize(d.volumes.size)]]));
        return 0;
      }
      case 'prune': {
        const p = parse(rest, [{ name: 'force', short: 'f' }, { name: 'volumes' }, { name: 'all', short: 'a' }], 'system prune');
        const r = await c.json<{ containers: string[]; networks: string[]; volumes: string[]; images: { blobs: number; snapshots: number } }>('POST', `/system/prune?volumes=${bool(p, 'volumes') ? 1 : 0}`);
        writeStdout(`Deleted containers: ${r.containers.length}\nDeleted networks: ${r.networks.length}\nDeleted volumes: ${r.volumes.length}\nDeleted image blobs: ${r.images.blobs}, layer snapshots: ${r.images.snapshots}\n`);
        return 0;
      }
      default:
        return undefined;
    }
  });
}
