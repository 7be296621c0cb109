import { PierError } from '../../common/errors.ts';
import { childProcess } from '../../common/lazy.ts';
import { writeStdout } from '../../common/log.ts';
import { str } from '../args.ts';
import { idArg, type Command } from './command.ts';

export const ps: Command = {
  name: 'ps',
  usage: 'ps [--format table|json] <container-id> [ps options]',
  flags: [{ name: 'format', short: 'f', value: true }],
  run({ rt }, p) {
    const pids = rt.ps(idArg(p, 'ps'));
    const format = str(p, 'format') ?? 'table';
    if (format === 'json') {
      writeStdout(JSON.stringify(pids) + '\n');
      return 0;
    }
    if (format !== 'table') throw new PierError(`ps: invalid format ${JSON.stringify(format)}: use table or json`);
    const psArgs = p.rest.length > 1 ? p.rest.slice(1) : ['-ef'];
    const out = childProcess().execFileSync('ps', psArgs, { encoding: 'utf8' }).split('\n');
    const header = out[0];
    const col = header.trim().split(/\s+/).indexOf('PID');
    if (col < 0) throw new PierError('ps: the ps output has no PID column');
    const keep = new Set(pids);
    writeStdout([header, ...out.slice(1).filter((l) => keep.has(Number(l.trim().split(/\s+/)[col])))].join('\n') + '\n');
    return 0;
  },
};
