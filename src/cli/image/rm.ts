import { writeStdout } from '../../common/log.ts';
import { args, humanSize, type ImageCommand } from './command.ts';

export const rm: ImageCommand = {
  name: 'rm',
  aliases: ['rmi', 'remove'],
  usage: 'rm IMAGE...',
  flags: [],
  async run({ svc }, p) {
    const refs = args(p, 1, 'rm', this.usage);
    const r = await svc.remove(refs);
    writeStdout(r.untagged.map((u) => `Untagged: ${u}\n`).join('') +
      (r.gc.removed.length ? `Deleted: ${r.gc.removed.length} blobs, ${humanSize(r.gc.freedBytes)}\n` : ''));
    return 0;
  },
};
