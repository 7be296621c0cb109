/**
 * `pier pull [flags] HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]`: pull an image into the local store,
 * named as it was pulled.
 */
import { isatty } from 'node:tty';
import { writeStdout } from '../common/log.ts';
import { cleanUpOnSignals } from '../common/interrupt.ts';
import { PierError } from '../common/errors.ts';
import { ImageService, parsePlatform } from '../image/index.ts';
import { Progress, Puller, parseRemoteReference, formatRemoteReference } from '../registry/index.ts';
import { bool, parseFlags, str } from './args.ts';
import { reportError } from './report.ts';
import { REGISTRY_FLAGS, REGISTRY_USAGE, registryOptions } from './registry-flags.ts';

const USAGE = `usage: pier pull [flags] HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]

flags:
  --platform OS/ARCH[/VARIANT]
                         take this platform from a multi-platform image (default: this host's)
  --all-platforms        keep a multi-platform image whole: every platform's manifest and layers;
                         the name then names the index (runs use this host's platform)
${REGISTRY_USAGE}  -q, --quiet            print only the pulled digest
  --root DIR             state root (default $PIER_ROOT, else /var/lib/pier)
`;

export async function pullMain(argv: string[]): Promise<number> {
  let debug = false;
  let what = 'pull';
  try {
    const p = parseFlags(argv, [
      { name: 'platform', value: true },
      { name: 'all-platforms' },
      ...REGISTRY_FLAGS,
      { name: 'quiet', short: 'q' },
      { name: 'root', value: true },
      { name: 'debug' },
      { name: 'help', short: 'h' },
    ], { what: 'pull' });
    debug = bool(p, 'debug');
    if (bool(p, 'help')) { writeStdout(USAGE); return 0; }
    if (p.rest.length !== 1) throw new PierError('pull: give one image reference (see pier pull --help)');
    const src = parseRemoteReference(p.rest[0]);
    what = `pull ${formatRemoteReference(src)}`;
    const platformFlag = str(p, 'platform');
    const platform = platformFlag === undefined ? undefined : parsePlatform(platformFlag);
    const allPlatforms = bool(p, 'all-platforms');
    if (platform && allPlatforms) throw new PierError('give --platform or --all-platforms, not both');
    const svc = new ImageService({ root: str(p, 'root') });
    const quiet = bool(p, 'quiet');
    const puller = new Puller(svc, src, {
      ...registryOptions(p, svc.root, src.host),
      progress: new Progress({ tty: isatty(1), quiet }),
      ...(platform ? { platform } : {}),
      allPlatforms,
    });
    cleanUpOnSignals(); // a pull interrupted leaves no temp file or lease
    const r = await puller.pull();
    writeStdout(quiet ? `${r.digest}\n` : `${r.ref}: digest: ${r.digest}\n`);
    return 0;
  } catch (err) {
    return reportError(err, { what, debug });
  }
}
