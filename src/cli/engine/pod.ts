/**
 * `pier pod create|ls|ps|inspect|start|stop|rm`: pods as podman has them — containers that share a
 * network (and IPC, UTS, optionally PID) namespace held by an infra container.
 */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import type { PodInfo, PodRecord } from '../../engine/index.ts';
import { bool, list, str } from '../args.ts';
import { table } from '../table.ts';
import { ago, checkFormat, keyValues, parse, parsePort, printJson, q, short, subcommands } from './common.ts';

const USAGE = `usage: pier pod COMMAND

commands:
  create [--name NAME] [-p [IP:]HOST:CTR[/udp]]... [--network NET] [--hostname NAME]
         [-l K=V]... [--share net,ipc,uts[,pid]]
  ls | ps [-q] [--format json]
  inspect POD...
  start POD...
  stop [-t SECONDS] POD...
  rm [-f] POD...
`;

export function podMain(argv: string[]): Promise<number> {
  return subcommands('pod', USAGE, argv, async (c, sub, rest) => {
    switch (sub) {
      case 'create': {
        const p = parse(rest, [
          { name: 'name', value: true }, { name: 'publish', short: 'p', value: true, multi: true }, { name: 'network', value: true },
          { name: 'hostname', value: true }, { name: 'label', short: 'l', value: true, multi: true }, { name: 'share', value: true },
        ], 'pod create');
        if (p.rest.length > 1 || (p.rest.length === 1 && str(p, 'name'))) throw new PierError('give the pod name once (--name or one argument)');
        const name = str(p, 'name') ?? p.rest[0];
        const share = str(p, 'share');
        const body = {
          ...(name ? { name } : {}),
          ...(str(p, 'network') ? { network: str(p, 'network') } : {}),
          ...(str(p, 'hostname') ? { hostname: str(p, 'hostname') } : {}),
          labels: keyValues(list(p, 'label'), 'label'),
          ports: list(p, 'publish').map(parsePort),
          ...(share !== undefined ? { share: share === '' ? [] : share.split(',').map((s) => s.trim()) } : {}),
        };
        const pod = await c.json<PodRecord>('POST', '/pods', body);
        writeStdout(`${pod.id}\n`);
        return 0;
      }
      case 'ls':
      case 'list':
      case 'ps': {
        const p = parse(rest, [{ name: 'quiet', short: 'q' }, { name: 'format', value: true }], `pod ${sub}`);
        const pods = await c.json<PodInfo[]>('GET', '/pods');
        if (bool(p, 'quiet')) writeStdout(pods.map((x) => `${short(x.id)}\n`).join(''));
        else if (checkFormat(str(p, 'format')) === 'json') printJson(pods);
        else writeStdout(table([['POD ID', 'NAME', 'STATUS', 'CREATED', 'INFRA ID', '# OF CONTAINERS'], ...pods.map((x) => [short(x.id), x.name, x.state, ago(x.created), short(x.infraId), String(x.containers.length)])]));
        return 0;
      }
      case 'inspect': {
        const p = parse(rest, [], 'pod inspect');
        if (!p.rest.length) throw new PierError('give at least one pod');
        const out: PodInfo[] = [];
        for (const ref of p.rest) out.push(await c.json<PodInfo>('GET', `/pods/${q(ref)}`));
        printJson(out);
        return 0;
      }
      case 'start':
      case 'stop':
      case 'rm': {
        const p = parse(rest, sub === 'rm' ? [{ name: 'force', short: 'f' }] : sub === 'stop' ? [{ name: 'time', short: 't', value: true }] : [], `pod ${sub}`);
        if (!p.rest.length) throw new PierError('give at least one pod');
        const t = str(p, 'time');
        if (t !== undefined && !/^\d+$/.test(t)) throw new PierError(`invalid --time ${JSON.stringify(t)}: whole seconds`);
        let failed = 0;
        for (const ref of p.rest) {
          try {
            if (sub === 'rm') await c.json('DELETE', `/pods/${q(ref)}${bool(p, 'force') ? '?force=1' : ''}`);
            else await c.json('POST', `/pods/${q(ref)}/${sub}${t !== undefined ? `?t=${t}` : ''}`);
            writeStdout(`${ref}\n`);
          } catch (err) {
            if (p.rest.length === 1) throw err;
            process.stderr.write(`pier pod ${sub}: ${(err as Error).message}\n`);
            failed++;
          }
        }
        return failed ? 1 : 0;
      }
      default:
        return undefined;
    }
  });
}
