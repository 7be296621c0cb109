import { bool } from '../args.ts';
import { createFlags, createOptions } from './create.ts';
import type { Command } from './command.ts';

export const run: Command = {
  name: 'run',
  usage: 'run [--bundle DIR] [--detach] [--keep] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] [--no-new-keyring] [--preserve-fds N] <container-id>',
  flags: [...createFlags.filter((f) => f.name !== 'pidfd-socket'), { name: 'detach', short: 'd' }, { name: 'keep' }, { name: 'no-subreaper' }],
  async run({ rt }, p) {
    return rt.run({ ...createOptions(p, 'run'), detach: bool(p, 'detach'), keep: bool(p, 'keep') });
  },
};
