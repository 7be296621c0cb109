import { writeStdout } from '../../common/log.ts';
import { PierError } from '../../common/errors.ts';
import { str } from '../args.ts';
import { IMPORT_FORMATS, type ImportFormat } from '../../image/index.ts';
import { args, type ImageCommand } from './command.ts';

export const importCmd: ImageCommand = {
  name: 'import',
  aliases: ['load'],
  usage: 'import [--ref NAME[:TAG]] [--format oci-dir|oci-archive|docker-archive|rootfs] PATH',
  flags: [{ name: 'ref', short: 'r', value: true }, { name: 'format', short: 'f', value: true }],
  async run({ svc }, p) {
    const [path, ...extra] = args(p, 1, 'import', this.usage);
    if (extra.length) throw new PierError(`image import: one path at a time (usage: pier image ${this.usage})`);
    const format = str(p, 'format');
    if (format !== undefined && !IMPORT_FORMATS.includes(format as ImportFormat)) {
      throw new PierError(`image import: invalid --format ${JSON.stringify(format)}: use ${IMPORT_FORMATS.join(', ')}`);
    }
    const got = await svc.importPath(path, { ref: str(p, 'ref'), format: format as ImportFormat | undefined });
    writeStdout(got.map((g) => `Imported: ${g.ref} (${g.descriptor.digest})\n`).join(''));
    return 0;
  },
};
