import { writeStdout } from '../../common/log.ts';
import { bool, str } from '../args.ts';
import { PierError } from '../../common/errors.ts';
import { idArg, type Command } from './command.ts';

/** events --stats: one JSON stats object; without it, one every --interval until the container stops. */
export const events: Command = {
  name: 'events',
  usage: 'events [--stats] [--interval 5s] <container-id>',
  flags: [{ name: 'stats' }, { name: 'interval', value: true }],
  async run({ rt }, p) {
    const id = idArg(p, 'events');
    if (bool(p, 'stats')) {
      writeStdout(JSON.stringify(rt.stats(id)) + '\n');
      return 0;
    }
    const iv = str(p, 'interval') ?? '5s';
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(iv);
    if (!m) throw new PierError(`events: --interval ${JSON.stringify(iv)} is not a duration like 5s`);
    const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
    let lastOom = -1;
    while (rt.state(id).status !== 'stopped') {
      const s = rt.stats(id);
      const oom = s.data.memory?.oomKills ?? 0;
      if (lastOom >= 0 && oom > lastOom) writeStdout(JSON.stringify({ type: 'oom', id }) + '\n');
      lastOom = oom;
      writeStdout(JSON.stringify(s) + '\n');
      await new Promise((r) => setTimeout(r, ms));
    }
    return 0;
  },
};
