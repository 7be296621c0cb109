/**
 * docker's top-level image verbs over pier's image commands: `images` (= image ls), `tag`, and
 * `rmi`, which asks pierd so an image a container still uses is not removed by accident.
 */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import { imageMain } from '../image/main.ts';
import { bool } from '../args.ts';
import { client, command, parse, q } from './common.ts';

export function imagesMain(argv: string[]): Promise<number> {
  return imageMain(['ls', ...argv]);
}

export function tagMain(argv: string[]): Promise<number> {
  return imageMain(['tag', ...argv]);
}

export function rmiMain(argv: string[]): Promise<number> {
  return command('rmi', 'usage: pier rmi [-f] IMAGE...\n\n  -f, --force   remove even if a container uses it\n', argv, async () => {
    const p = parse(argv, [{ name: 'force', short: 'f' }], 'rmi');
    if (p.rest.length === 0) throw new PierError('give at least one image');
    for (const ref of p.rest) {
      const r = await client().json<{ untagged: string[] }>('DELETE', `/images/${q(ref)}?force=${bool(p, 'force') ? 1 : 0}`);
      writeStdout(r.untagged.map((u) => `Untagged: ${u}\n`).join(''));
    }
    return 0;
  });
}
