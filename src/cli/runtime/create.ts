import { bool, int, str } from '../args.ts';
import { idArg, type Command } from './command.ts';

export const createFlags = [
  { name: 'bundle', short: 'b', value: true },
  { name: 'console-socket', value: true },
  { name: 'pid-file', value: true },
  { name: 'pidfd-socket', value: true },
  { name: 'no-pivot' },
  { name: 'no-new-keyring' },
  { name: 'preserve-fds', value: true },
];

export function createOptions(p: import('../args.ts').Parsed, cmd: string) {
  return {
    id: idArg(p, cmd),
    bundle: str(p, 'bundle'),
    consoleSocket: str(p, 'console-socket'),
    pidFile: str(p, 'pid-file'),
    noPivot: bool(p, 'no-pivot'),
    noNewKeyring: bool(p, 'no-new-keyring'),
    preserveFds: preserveFds(p, cmd),
  };
}

/** --preserve-fds N plus the fds systemd socket activation hands over (LISTEN_FDS). */
export function preserveFds(p: import('../args.ts').Parsed, cmd: string): number {
  const n = int(p, 'preserve-fds', cmd) ?? 0;
  const listen = Number(process.env.LISTEN_FDS ?? 0);
  return n + (Number.isInteger(listen) && listen > 0 ? listen : 0);
}

export const create: Command = {
  name: 'create',
  usage: 'create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] [--no-new-keyring] [--preserve-fds N] <container-id>',
  flags: createFlags,
  async run({ rt }, p) {
    if (str(p, 'pidfd-socket')) throw new (await import('../../common/errors.ts')).PierError('create: --pidfd-socket is not supported by pier-runtime');
    await rt.create(createOptions(p, 'create'));
    return 0;
  },
};
