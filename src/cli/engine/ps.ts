/** `pier ps [-a] [-q] [--format json]`: list containers. */
import { writeStdout } from '../../common/log.ts';
import type { ContainerInfo } from '../../engine/index.ts';
import { bool, str } from '../args.ts';
import { table } from '../table.ts';
import { ago, checkFormat, client, command, parse, printJson, short } from './common.ts';

const USAGE = `usage: pier ps [-a] [-q] [--format json|table]

  -a, --all      include stopped containers
  -q, --quiet    only ids
`;

export function status(c: ContainerInfo): string {
  const s = c.state;
  switch (s.status) {
    // docker's: "Up 3 seconds (healthy)", "(unhealthy)", "(health: starting)"
    case 'running': return `Up ${ago(s.startedAt)}${s.health ? (s.health.Status === 'starting' ? ' (health: starting)' : ` (${s.health.Status})`) : ''}`;
    case 'paused': return `Up ${ago(s.startedAt)} (Paused)`;
    case 'restarting': return `Restarting (${s.exitCode ?? 0}) ${ago(s.finishedAt)} ago`;
    case 'exited': return `Exited (${s.exitCode ?? 0}) ${ago(s.finishedAt)} ago`;
    default: return s.status[0].toUpperCase() + s.status.slice(1);
  }
}

export function portsText(c: ContainerInfo): string {
  return c.network.ports.map((p) => `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', ');
}

export function psMain(argv: string[]): Promise<number> {
  return command('ps', USAGE, argv, async () => {
    const p = parse(argv, [{ name: 'all', short: 'a' }, { name: 'quiet', short: 'q' }, { name: 'format', value: true }], 'ps');
    const format = checkFormat(str(p, 'format'));
    const list = await client().json<ContainerInfo[]>('GET', `/containers?all=${bool(p, 'all') ? 1 : 0}`);
    if (bool(p, 'quiet')) { writeStdout(list.map((c) => `${short(c.id)}\n`).join('')); return 0; }
    if (format === 'json') { printJson(list); return 0; }
    const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']];
    for (const c of list) {
      const cmd = c.command.join(' ');
      rows.push([short(c.id), c.image, JSON.stringify(cmd.length > 20 ? `${cmd.slice(0, 19)}…` : cmd), `${ago(c.created)} ago`, status(c), portsText(c), c.name]);
    }
    writeStdout(table(rows));
    return 0;
  });
}
