import { writeStdout } from '../../common/log.ts';
import { bool } from '../args.ts';
import { formatFlag, humanSize, type ImageCommand } from './command.ts';

export const prune: ImageCommand = {
  name: 'prune',
  usage: 'prune [--dry-run] [--format text|json]',
  flags: [{ name: 'dry-run', short: 'n' }, { name: 'format', short: 'f', value: true }],
  async run({ svc }, p) {
    const format = formatFlag(p, ['text', 'json'], 'prune');
    const r = await svc.gc({ dryRun: bool(p, 'dry-run') });
    if (format === 'json') {
      writeStdout(JSON.stringify(r) + '\n');
      return 0;
    }
    const verb = r.dryRun ? 'Would delete' : 'Deleted';
    writeStdout(r.removed.map((b) => `${verb}: ${b.digest}\n`).join('') +
      `${verb} ${r.removed.length} blobs and ${r.ingest.length} stale ingest files: ${humanSize(r.freedBytes)} ${r.dryRun ? 'to free' : 'freed'}` +
      (r.dryRun ? '\n' : `; ${r.snapshots.length} unused layer snapshots removed\n`));
    return 0;
  },
};
