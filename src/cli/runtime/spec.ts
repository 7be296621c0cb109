import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PierError } from '../../common/errors.ts';
import { defaultSpec } from '../../runtime/index.ts';
import { bool, str } from '../args.ts';
import type { Command } from './command.ts';

export const spec: Command = {
  name: 'spec',
  usage: 'spec [--bundle DIR] [--rootless]',
  flags: [{ name: 'bundle', short: 'b', value: true }, { name: 'rootless' }],
  run(_ctx, p) {
    const dir = resolve(str(p, 'bundle') ?? '.');
    const file = join(dir, 'config.json');
    if (existsSync(file)) throw new PierError(`spec: ${file} already exists; remove it first`);
    writeFileSync(file, JSON.stringify(defaultSpec({ rootless: bool(p, 'rootless') }), null, '\t') + '\n');
    return 0;
  },
};
