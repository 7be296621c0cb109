import { writeStdout } from '../../common/log.ts';
import { bool } from '../args.ts';
import { table } from '../table.ts';
import { args, formatFlag, humanAge, humanSize, shortId, type ImageCommand } from './command.ts';

export const history: ImageCommand = {
  name: 'history',
  usage: 'history [--format table|json] [--no-trunc] IMAGE',
  flags: [{ name: 'format', short: 'f', value: true }, { name: 'no-trunc' }],
  async run({ svc }, p) {
    const [ref] = args(p, 1, 'history', this.usage);
    const format = formatFlag(p, ['table', 'json'], 'history');
    // Newest step first, as docker prints it.
    const rows = (await svc.history(ref)).reverse();
    if (format === 'json') {
      writeStdout(JSON.stringify(rows) + '\n');
      return 0;
    }
    const full = bool(p, 'no-trunc');
    const cut = (s: string) => (full || s.length <= 45 ? s : s.slice(0, 44) + '…');
    writeStdout(table([['LAYER', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
      ...rows.map((r) => [r.layer ? (full ? r.layer.digest : shortId(r.layer.digest)) : '<none>', humanAge(r.created),
        cut(r.createdBy ?? ''), humanSize(r.layer?.size ?? 0), r.comment ?? ''])]));
    return 0;
  },
};
