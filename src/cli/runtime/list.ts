import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import { bool, str } from '../args.ts';
import type { Command } from './command.ts';
import { table } from '../table.ts';

export const list: Command = {
  name: 'list',
  usage: 'list [--format table|json] [--quiet]',
  flags: [{ name: 'format', short: 'f', value: true }, { name: 'quiet', short: 'q' }],
  run({ rt }, p) {
    const format = str(p, 'format') ?? 'table';
    const states = rt.list();
    if (bool(p, 'quiet')) {
      writeStdout(states.map((s) => s.id + '\n').join(''));
    } else if (format === 'json') {
      writeStdout(JSON.stringify(states) + '\n');
    } else if (format === 'table') {
      writeStdout(table([['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'],
        ...states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created ?? '', s.owner ?? ''])]));
    } else {
      throw new PierError(`list: invalid format ${JSON.stringify(format)}: use table or json`);
    }
    return 0;
  },
};
