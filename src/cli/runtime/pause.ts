import { idArg, type Command } from './command.ts';

export const pause: Command = {
  name: 'pause',
  usage: 'pause <container-id>',
  flags: [],
  run({ rt }, p) {
    rt.pause(idArg(p, 'pause'));
    return 0;
  },
};

export const resume: Command = {
  name: 'resume',
  usage: 'resume <container-id>',
  flags: [],
  run({ rt }, p) {
    rt.resume(idArg(p, 'resume'));
    return 0;
  },
};
