import { writeStdout } from '../../common/log.ts';
import { PierError } from '../../common/errors.ts';
import { str } from '../args.ts';
import { args, type ImageCommand } from './command.ts';

/** `pier image unpack IMAGE DIR`: a runtime bundle (rootfs + config.json) that pier-runtime runs. */
export const unpack: ImageCommand = {
  name: 'unpack',
  usage: 'unpack [--user U] [--cwd DIR] IMAGE DIR   (a bundle for pier-runtime: DIR/rootfs + DIR/config.json)',
  flags: [{ name: 'user', value: true }, { name: 'cwd', value: true }],
  async run({ svc }, p) {
    const [image, dir, ...extra] = args(p, 2, 'unpack', this.usage);
    if (extra.length) throw new PierError(`image unpack: too many arguments (usage: pier image ${this.usage})`);
    const { ref, bundle } = await svc.unpack(image, dir, { user: str(p, 'user'), cwd: str(p, 'cwd') });
    writeStdout(`Unpacked ${ref} into ${bundle}\n`);
    return 0;
  },
};
