/** `pier logs [-f] [--tail N] [-t] [--since T] [--until T] CONTAINER`: a container's output from its JSON log. */
import { PierError } from '../../common/errors.ts';
import { bool, str } from '../args.ts';
import { client, command, parse, q } from './common.ts';

const USAGE = `usage: pier logs [flags] CONTAINER

  -f, --follow        keep printing new output until the container stops
  -n, --tail N        only the last N lines
  -t, --timestamps    prefix each line with its time
  --since TIME        RFC 3339 time or a duration like 10m
  --until TIME        same forms as --since
`;

function when(s: string | undefined, what: string): string | undefined {
  if (s === undefined) return undefined;
  const m = /^(\d+)(s|m|h)$/.exec(s);
  if (m) return new Date(Date.now() - Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6 }[m[2] as 's' | 'm' | 'h']).toISOString();
  if (Number.isNaN(Date.parse(s))) throw new PierError(`invalid ${what} ${JSON.stringify(s)}: use an RFC 3339 time or a duration like 10m`);
  return new Date(s).toISOString();
}

export function logsMain(argv: string[]): Promise<number> {
  return command('logs', USAGE, argv, async () => {
    const p = parse(argv, [
      { name: 'follow', short: 'f' }, { name: 'tail', short: 'n', value: true }, { name: 'timestamps', short: 't' },
      { name: 'since', value: true }, { name: 'until', value: true },
    ], 'logs');
    if (p.rest.length !== 1) throw new PierError('give one container');
    const tail = str(p, 'tail');
    if (tail !== undefined && tail !== 'all' && !/^\d+$/.test(tail)) throw new PierError(`invalid --tail ${JSON.stringify(tail)}: a number or "all"`);
    const qs = new URLSearchParams();
    if (bool(p, 'follow')) qs.set('follow', '1');
    if (tail !== undefined && tail !== 'all') qs.set('tail', tail);
    const since = when(str(p, 'since'), '--since');
    const until = when(str(p, 'until'), '--until');
    if (since) qs.set('since', since);
    if (until) qs.set('until', until);
    const ts = bool(p, 'timestamps');
    const c = client();
    for await (const line of c.stream('GET', `/containers/${q(p.rest[0])}/logs?${qs}`)) {
      if ('entry' in line) (line.entry.stream === 'stderr' ? process.stderr : process.stdout).write(ts ? `${line.entry.time} ${line.entry.log}` : line.entry.log);
      else if ('error' in line) throw new PierError(line.error);
    }
    return 0;
  });
}
