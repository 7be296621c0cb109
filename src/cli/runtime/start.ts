import { idArg, type Command } from './command.ts';

export const start: Command = {
  name: 'start',
  usage: 'start <container-id>',
  flags: [],
  async run({ rt }, p) {
    await rt.start(idArg(p, 'start'));
    return 0;
  },
};
