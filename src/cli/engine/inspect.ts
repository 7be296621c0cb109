/** `pier inspect [--type container|image|network|volume] NAME…`: JSON of each object (containers first, like docker). */
import { PierError } from '../../common/errors.ts';
import { ImageService } from '../../image/index.ts';
import { str } from '../args.ts';
import { client, command, parse, printJson, q } from './common.ts';

const USAGE = `usage: pier inspect [--type container|image|network|volume] NAME [NAME...]
`;

export function inspectMain(argv: string[]): Promise<number> {
  return command('inspect', USAGE, argv, async () => {
    const p = parse(argv, [{ name: 'type', value: true }, { name: 'format', short: 'f', value: true }], 'inspect');
    if (p.rest.length === 0) throw new PierError('give at least one name');
    const type = str(p, 'type');
    if (type && !['container', 'image', 'network', 'volume'].includes(type)) throw new PierError(`invalid --type ${JSON.stringify(type)}`);
    const c = client();
    const out: unknown[] = [];
    for (const ref of p.rest) {
      const tries: [string, () => Promise<unknown>][] = [
        ['container', () => c.json('GET', `/containers/${q(ref)}`)],
        ['image', () => new ImageService().inspect(ref)],
        ['network', () => c.json('GET', `/networks/${q(ref)}`)],
        ['volume', () => c.json('GET', `/volumes/${q(ref)}`)],
      ];
      let found: unknown;
      for (const [t, f] of tries) {
        if (type && t !== type) continue;
        try { found = await f(); break; } catch { /* next kind */ }
      }
      if (found === undefined) throw new PierError(`no such ${type ?? 'object'}: ${ref}`);
      out.push(found);
    }
    printJson(out);
    return 0;
  });
}
