/** `pier port CONTAINER [PORT[/PROTO]]`: the container's published ports. */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import type { ContainerInfo } from '../../engine/index.ts';
import { client, command, parse, q } from './common.ts';

export function portMain(argv: string[]): Promise<number> {
  return command('port', 'usage: pier port CONTAINER [PORT[/tcp|udp]]\n', argv, async () => {
    const p = parse(argv, [], 'port');
    if (p.rest.length < 1 || p.rest.length > 2) throw new PierError('give a container and optionally a port');
    const info = await client().json<ContainerInfo>('GET', `/containers/${q(p.rest[0])}`);
    let ports = info.network.ports;
    if (p.rest[1]) {
      const [port, proto = 'tcp'] = p.rest[1].split('/');
      ports = ports.filter((x) => String(x.containerPort) === port && x.protocol === proto);
      if (ports.length === 0) throw new PierError(`no public port ${p.rest[1]} published for ${p.rest[0]}`);
      writeStdout(ports.map((x) => `${x.hostIp ?? '0.0.0.0'}:${x.hostPort}\n`).join(''));
      return 0;
    }
    writeStdout(ports.map((x) => `${x.containerPort}/${x.protocol} -> ${x.hostIp ?? '0.0.0.0'}:${x.hostPort}\n`).join(''));
    return 0;
  });
}
