import { readFileSync } from 'node:fs';
import { messageOf, PierError } from '../../common/errors.ts';
import { bool, list, str } from '../args.ts';
import type { Process } from '../../runtime/index.ts';
import { preserveFds } from './create.ts';
import { idArg, type Command } from './command.ts';

/** The process to exec: a --process JSON file, or argv + flags over the container's own process. */
function processFrom(p: import('../args.ts').Parsed, base: Process | undefined): Process {
  const file = str(p, 'process');
  if (file) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as Process;
    } catch (err) {
      throw new PierError(`exec: cannot read process file ${file}: ${messageOf(err)}`);
    }
  }
  const args = p.rest.slice(1);
  if (args.length === 0) throw new PierError('exec: no command given (pass argv after the id, or --process FILE)');
  const proc: Process = structuredClone(base ?? { cwd: '/', user: { uid: 0, gid: 0 } });
  proc.args = args;
  proc.terminal = bool(p, 'tty');
  delete proc.consoleSize;
  const cwd = str(p, 'cwd');
  if (cwd) proc.cwd = cwd;
  const env = list(p, 'env');
  if (env.length) {
    const keys = new Set(env.map((e) => e.split('=')[0]));
    proc.env = [...(proc.env ?? []).filter((e) => !keys.has(e.split('=')[0])), ...env];
  }
  const user = str(p, 'user');
  if (user) {
    const m = /^(\d+)(?::(\d+))?$/.exec(user);
    if (!m) throw new PierError(`exec: --user ${JSON.stringify(user)} must be UID[:GID]`);
    proc.user = { ...proc.user, uid: Number(m[1]), gid: m[2] !== undefined ? Number(m[2]) : proc.user.gid };
  }
  const gids = str(p, 'additional-gids');
  if (gids) proc.user.additionalGids = gids.split(',').map(Number);
  const caps = list(p, 'cap');
  if (caps.length) {
    const c = (proc.capabilities ??= {});
    for (const set of ['bounding', 'effective', 'permitted', 'ambient'] as const) c[set] = [...new Set([...(c[set] ?? []), ...caps])];
  }
  if (bool(p, 'no-new-privs')) proc.noNewPrivileges = true;
  return proc;
}

export const exec: Command = {
  name: 'exec',
  usage: 'exec [--process FILE] [--tty] [--console-socket SOCK] [--detach] [--pid-file FILE] [--cwd DIR] [--env K=V] [--user UID[:GID]] <container-id> [command args…]',
  flags: [
    { name: 'process', short: 'p', value: true },
    { name: 'tty', short: 't' },
    { name: 'console-socket', value: true },
    { name: 'detach', short: 'd' },
    { name: 'pid-file', value: true },
    { name: 'cwd', value: true },
    { name: 'env', short: 'e', value: true, multi: true },
    { name: 'user', short: 'u', value: true },
    { name: 'additional-gids', short: 'g', value: true },
    { name: 'cap', short: 'c', value: true, multi: true },
    { name: 'no-new-privs' },
    { name: 'preserve-fds', value: true },
    { name: 'process-label', value: true },
    { name: 'apparmor', value: true },
    { name: 'ignore-paused' },
  ],
  async run({ rt }, p) {
    const id = idArg(p, 'exec');
    if (str(p, 'process-label') || str(p, 'apparmor')) throw new PierError('exec: --process-label and --apparmor are not supported by pier-runtime');
    const proc = processFrom(p, rt.record(id).config.process);
    const res = await rt.exec(id, {
      process: proc,
      consoleSocket: str(p, 'console-socket'),
      detach: bool(p, 'detach'),
      pidFile: str(p, 'pid-file'),
      preserveFds: preserveFds(p, 'exec'),
    });
    return res.exitCode ?? 0;
  },
};
