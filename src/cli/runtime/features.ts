import { features as describe } from '../../runtime/index.ts';
import { writeStdout } from '../../common/log.ts';
import type { Command } from './command.ts';

export const features: Command = {
  name: 'features',
  usage: 'features',
  flags: [],
  run() {
    writeStdout(JSON.stringify(describe(), null, 2) + '\n');
    return 0;
  },
};
