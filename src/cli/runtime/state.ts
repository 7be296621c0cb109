import { writeStdout } from '../../common/log.ts';
import { idArg, type Command } from './command.ts';

export const state: Command = {
  name: 'state',
  usage: 'state <container-id>',
  flags: [],
  run({ rt }, p) {
    writeStdout(JSON.stringify(rt.state(idArg(p, 'state')), null, 2) + '\n');
    return 0;
  },
};
