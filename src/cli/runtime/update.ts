import { readFileSync } from 'node:fs';
import { messageOf, PierError } from '../../common/errors.ts';
import { int, str } from '../args.ts';
import type { LinuxResources } from '../../runtime/index.ts';
import { idArg, type Command } from './command.ts';

/** runc's update flags, each mapped onto the LinuxResources field it sets. */
function fromFlags(p: import('../args.ts').Parsed): LinuxResources {
  const r: LinuxResources = {};
  const n = (name: string) => int(p, name, 'update');
  const mem = { limit: n('memory'), reservation: n('memory-reservation'), swap: n('memory-swap') };
  if (Object.values(mem).some((v) => v !== undefined)) r.memory = mem;
  const cpu = { shares: n('cpu-shares'), quota: n('cpu-quota'), period: n('cpu-period'), cpus: str(p, 'cpuset-cpus'), mems: str(p, 'cpuset-mems') };
  if (Object.values(cpu).some((v) => v !== undefined)) r.cpu = cpu;
  const pids = n('pids-limit');
  if (pids !== undefined) r.pids = { limit: pids };
  const weight = n('blkio-weight');
  if (weight !== undefined) r.blockIO = { weight };
  return JSON.parse(JSON.stringify(r)) as LinuxResources;
}

export const update: Command = {
  name: 'update',
  usage: 'update [--resources FILE|-] [--memory N] [--cpu-quota N] [--cpu-period N] [--cpu-shares N] [--cpuset-cpus L] [--pids-limit N] <container-id>',
  flags: ['memory', 'memory-reservation', 'memory-swap', 'cpu-shares', 'cpu-quota', 'cpu-period', 'cpuset-cpus', 'cpuset-mems', 'pids-limit', 'blkio-weight']
    .map((name) => ({ name, value: true }))
    .concat([{ name: 'resources', short: 'r', value: true } as { name: string; value: boolean; short?: string }]),
  run({ rt }, p) {
    const id = idArg(p, 'update');
    let res: LinuxResources;
    const file = str(p, 'resources');
    if (file !== undefined) {
      let text: string;
      try {
        text = readFileSync(file === '-' ? 0 : file, 'utf8');
      } catch (err) {
        throw new PierError(`update: cannot read resources from ${file === '-' ? 'stdin' : file}: ${messageOf(err)}`);
      }
      try {
        res = JSON.parse(text) as LinuxResources;
      } catch (err) {
        throw new PierError(`update: resources are not valid JSON: ${messageOf(err)}`);
      }
    } else {
      res = fromFlags(p);
    }
    rt.update(id, res);
    return 0;
  },
};
