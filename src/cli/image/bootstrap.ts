import { writeStdout } from '../../common/log.ts';
import { PierError } from '../../common/errors.ts';
import { str } from '../args.ts';
import { args, type ImageCommand } from './command.ts';

export const bootstrap: ImageCommand = {
  name: 'bootstrap',
  usage: 'bootstrap busybox|debian [--ref NAME[:TAG]] [--suite SUITE] [--mirror URL] [--cache-dir DIR]',
  flags: [{ name: 'ref', short: 'r', value: true }, { name: 'suite', value: true }, { name: 'mirror', value: true }, { name: 'cache-dir', value: true }],
  async run({ svc }, p) {
    const [kind, ...extra] = args(p, 1, 'bootstrap', this.usage);
    if (extra.length) throw new PierError(`image bootstrap: one image at a time (usage: pier image ${this.usage})`);
    if (kind !== 'busybox' && kind !== 'debian') throw new PierError(`image bootstrap: unknown base image ${JSON.stringify(kind)} (busybox or debian)`);
    if (kind === 'busybox' && (p.flags.has('suite') || p.flags.has('mirror') || p.flags.has('cache-dir'))) {
      throw new PierError('image bootstrap busybox: --suite, --mirror and --cache-dir are for debian');
    }
    const got = await svc.bootstrap(kind, { ref: str(p, 'ref'), suite: str(p, 'suite'), mirror: str(p, 'mirror'), cacheDir: str(p, 'cache-dir') });
    writeStdout(`Created: ${got.ref} (${got.descriptor.digest})\n`);
    return 0;
  },
};
