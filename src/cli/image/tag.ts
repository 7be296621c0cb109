import { writeStdout } from '../../common/log.ts';
import { PierError } from '../../common/errors.ts';
import { args, type ImageCommand } from './command.ts';

export const tag: ImageCommand = {
  name: 'tag',
  usage: 'tag SOURCE TARGET',
  flags: [],
  async run({ svc }, p) {
    const [src, dst, ...extra] = args(p, 2, 'tag', this.usage);
    if (extra.length) throw new PierError(`image tag: too many arguments (usage: pier image ${this.usage})`);
    writeStdout(`Tagged: ${await svc.tag(src, dst)}\n`);
    return 0;
  },
};
