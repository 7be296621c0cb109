/**
 * `pier image …`: the image store's command line. Errors are one line (`pier: image "x:latest" not
 * found`) and a non-zero exit; `--root` (or $PIER_ROOT) picks the state root.
 */
import { writeStdout } from '../../common/log.ts';
import { cleanUpOnSignals } from '../../common/interrupt.ts';
import { PierError } from '../../common/errors.ts';
import { ImageService } from '../../image/index.ts';
import { bool, parseFlags, str } from '../args.ts';
import type { ImageCommand } from './command.ts';
import { ls } from './ls.ts';
import { inspect } from './inspect.ts';
import { rm } from './rm.ts';
import { tag } from './tag.ts';
import { importCmd } from './import.ts';
import { exportCmd } from './export.ts';
import { history } from './history.ts';
import { bootstrap } from './bootstrap.ts';
import { prune } from './prune.ts';
import { unpack } from './unpack.ts';
import { reportError } from '../report.ts';

const COMMANDS: ImageCommand[] = [ls, inspect, rm, tag, importCmd, exportCmd, history, bootstrap, prune, unpack];

function usage(): string {
  return 'usage: pier image [--root DIR] <command> [flags] …\n\ncommands:\n' + COMMANDS.map((c) => `  ${c.usage}`).join('\n') +
    '\n\nThe store is $PIER_ROOT/images (PIER_ROOT defaults to /var/lib/pier).\n';
}

export async function imageMain(argv: string[]): Promise<number> {
  let debug = false;
  try {
    const g = parseFlags(argv, [{ name: 'root', value: true }, { name: 'debug' }, { name: 'help', short: 'h' }], { stopAtPositional: true, what: 'pier image' });
    debug = bool(g, 'debug');
    const name = g.rest[0];
    if (bool(g, 'help') || !name || name === 'help') {
      writeStdout(usage());
      return name || bool(g, 'help') ? 0 : 1;
    }
    const cmd = COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
    if (!cmd) throw new PierError(`image: unknown command ${JSON.stringify(name)} (see pier image --help)`);
    const p = parseFlags(g.rest.slice(1), [...cmd.flags, { name: 'help', short: 'h' }], { what: `image ${cmd.name}` });
    if (bool(p, 'help')) {
      writeStdout(`usage: pier image ${cmd.usage}\n`);
      return 0;
    }
    const svc = new ImageService({ root: str(g, 'root') || undefined });
    cleanUpOnSignals(); // an import or bootstrap interrupted leaves no temp file or lease
    return await cmd.run({ svc }, p);
  } catch (err) {
    return reportError(err, { debug });
  }
}
