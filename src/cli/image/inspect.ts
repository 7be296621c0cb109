import { writeStdout } from '../../common/log.ts';
import { args, type ImageCommand } from './command.ts';

export const inspect: ImageCommand = {
  name: 'inspect',
  usage: 'inspect IMAGE...',
  flags: [],
  async run({ svc }, p) {
    const refs = args(p, 1, 'inspect', this.usage);
    // All or nothing: an unknown image fails before anything is printed.
    const out = [];
    for (const r of refs) out.push(await svc.inspect(r));
    writeStdout(JSON.stringify(out, null, 2) + '\n');
    return 0;
  },
};
