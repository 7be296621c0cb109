import { writeStdout } from '../../common/log.ts';
import { PierError } from '../../common/errors.ts';
import { str } from '../args.ts';
import { args, formatFlag, type ImageCommand } from './command.ts';

export const exportCmd: ImageCommand = {
  name: 'export',
  aliases: ['save'],
  usage: 'export --output DEST [--format oci-dir|oci-archive] IMAGE...',
  flags: [{ name: 'output', short: 'o', value: true }, { name: 'format', short: 'f', value: true }],
  async run({ svc }, p) {
    const refs = args(p, 1, 'export', this.usage);
    const dest = str(p, 'output');
    if (!dest) throw new PierError(`image export: --output is required (usage: pier image ${this.usage})`);
    // Without --format, a .tar destination is an oci-archive, anything else a layout directory.
    const format = p.flags.has('format') ? formatFlag(p, ['oci-dir', 'oci-archive'], 'export') : /\.tar$/.test(dest) ? 'oci-archive' : 'oci-dir';
    await svc.export(refs, dest, { format: format as 'oci-dir' | 'oci-archive' });
    writeStdout(`Exported: ${refs.join(', ')} to ${dest} (${format})\n`);
    return 0;
  },
};
