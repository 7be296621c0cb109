import { bool } from '../args.ts';
import { idArg, type Command } from './command.ts';

export const kill: Command = {
  name: 'kill',
  usage: 'kill [--all] <container-id> [signal]',
  flags: [{ name: 'all', short: 'a' }],
  run({ rt }, p) {
    rt.kill(idArg(p, 'kill'), p.rest[1] ?? 'SIGTERM', bool(p, 'all'));
    return 0;
  },
};
