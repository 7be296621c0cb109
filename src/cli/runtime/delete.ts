import { bool } from '../args.ts';
import { idArg, type Command } from './command.ts';

export const del: Command = {
  name: 'delete',
  usage: 'delete [--force] <container-id>',
  flags: [{ name: 'force', short: 'f' }],
  async run({ rt }, p) {
    await rt.delete(idArg(p, 'delete'), bool(p, 'force'));
    return 0;
  },
};
