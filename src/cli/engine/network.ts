/** `pier network create|ls|rm|inspect|prune`: bridge networks (docker's user-defined networks). */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import { bool, list, str } from '../args.ts';
import { table } from '../table.ts';
import { checkFormat, keyValues, objectVerb, parse, printJson, short, subcommands } from './common.ts';

const USAGE = `usage: pier network COMMAND

commands:
  create [--subnet CIDR] [--gateway IP] [--internal] [-l K=V] NAME
  ls [-q] [--format json]
  rm NAME...
  inspect NAME...
  prune
`;

interface Net { id: string; name: string; driver: string; subnet: string; gateway: string; internal: boolean; bridge: string }

export function networkMain(argv: string[]): Promise<number> {
  return subcommands('network', USAGE, argv, async (c, sub, rest) => {
    switch (sub) {
      case 'create': {
        const p = parse(rest, [{ name: 'subnet', value: true }, { name: 'gateway', value: true }, { name: 'internal' }, { name: 'driver', short: 'd', value: true }, { name: 'label', short: 'l', value: true, multi: true }], 'network create');
        if (p.rest.length !== 1) throw new PierError('give one network name');
        const driver = str(p, 'driver');
        if (driver && driver !== 'bridge') throw new PierError(`unsupported network driver ${JSON.stringify(driver)}: pier has bridge`);
        const labels = keyValues(list(p, 'label'), 'label');
        const n = await c.json<Net>('POST', '/networks', { name: p.rest[0], subnet: str(p, 'subnet'), gateway: str(p, 'gateway'), internal: bool(p, 'internal'), labels });
        writeStdout(`${n.id}\n`);
        return 0;
      }
      case 'ls':
      case 'list': {
        const p = parse(rest, [{ name: 'quiet', short: 'q' }, { name: 'format', value: true }], 'network ls');
        const nets = await c.json<Net[]>('GET', '/networks');
        if (bool(p, 'quiet')) writeStdout(nets.map((n) => `${short(n.id)}\n`).join(''));
        else if (checkFormat(str(p, 'format')) === 'json') printJson(nets);
        else writeStdout(table([['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET', 'GATEWAY'], ...nets.map((n) => [short(n.id), n.name, n.driver, n.subnet, n.gateway])]));
        return 0;
      }
      default:
        return objectVerb(c, 'network', sub, rest);
    }
  });
}
