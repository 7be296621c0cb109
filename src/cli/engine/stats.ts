/** `pier stats [--no-stream] [--format json] [CONTAINER…]`: CPU, memory, pids and network of running containers. */
import { writeStdout } from '../../common/log.ts';
import type { ContainerInfo, StatsInfo } from '../../engine/index.ts';
import { bool, str } from '../args.ts';
import { table } from '../table.ts';
import { checkFormat, client, command, humanSize, parse, printJson, q, short } from './common.ts';

const USAGE = `usage: pier stats [--no-stream] [--format json] [CONTAINER...]

  --no-stream   print once and exit (default on when stdout is not a terminal)
`;

export function statsMain(argv: string[]): Promise<number> {
  return command('stats', USAGE, argv, async () => {
    const p = parse(argv, [{ name: 'no-stream' }, { name: 'format', value: true }, { name: 'all', short: 'a' }], 'stats');
    const format = checkFormat(str(p, 'format'));
    const c = client();
    const once = bool(p, 'no-stream') || !process.stdout.isTTY || format === 'json';
    for (;;) {
      const refs = p.rest.length ? p.rest : (await c.json<ContainerInfo[]>('GET', '/containers')).map((x) => x.id);
      const all = await Promise.all(refs.map((r) => c.json<StatsInfo>('GET', `/containers/${q(r)}/stats`)));
      if (format === 'json') printJson(all);
      else {
        const rows = [['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'PIDS']];
        for (const s of all) {
          rows.push([short(s.id), s.name, `${s.cpuPercent.toFixed(2)}%`, `${humanSize(s.memoryUsage)} / ${s.memoryLimit ? humanSize(s.memoryLimit) : 'unlimited'}`,
            s.memoryLimit ? `${((s.memoryUsage / s.memoryLimit) * 100).toFixed(2)}%` : '--', `${humanSize(s.netRx)} / ${humanSize(s.netTx)}`, String(s.pids)]);
        }
        if (!once) writeStdout('\x1b[2J\x1b[H');
        writeStdout(table(rows));
      }
      if (once) return 0;
      await new Promise((r) => setTimeout(r, 1000));
    }
  });
}
