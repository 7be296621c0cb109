import { writeStdout } from '../../common/log.ts';
import { bool } from '../args.ts';
import { table } from '../table.ts';
import { formatFlag, humanAge, humanSize, shortId, type ImageCommand } from './command.ts';

export const ls: ImageCommand = {
  name: 'ls',
  aliases: ['list'],
  usage: 'ls [--format table|json] [--quiet] [--no-trunc]',
  flags: [{ name: 'format', short: 'f', value: true }, { name: 'quiet', short: 'q' }, { name: 'no-trunc' }],
  async run({ svc }, p) {
    const format = formatFlag(p, ['table', 'json'], 'ls');
    const images = await svc.list();
    if (bool(p, 'quiet')) {
      writeStdout([...new Set(images.map((i) => (bool(p, 'no-trunc') ? i.digest : shortId(i.digest))))].map((s) => s + '\n').join(''));
    } else if (format === 'json') {
      writeStdout(JSON.stringify(images) + '\n');
    } else {
      writeStdout(table([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'],
        ...images.map((i) => [i.repository, i.tag || '<none>', bool(p, 'no-trunc') ? i.digest : shortId(i.digest),
          i.error ? 'broken' : humanAge(i.created), i.size === undefined ? '?' : humanSize(i.size)])]));
    }
    return 0;
  },
};
