/**
 * `pier push [flags] IMAGE [DESTINATION]`: push a local image to a registry. DESTINATION is
 * `host[:port]/repository[:tag]`; without it IMAGE's own name must carry the host.
 */
import { isatty } from 'node:tty';
import { writeStdout } from '../common/log.ts';
import { PierError } from '../common/errors.ts';
import { ImageService } from '../image/index.ts';
import { Progress, Pusher, parseRemoteReference, formatRemoteReference } from '../registry/index.ts';
import { bool, int, parseFlags, str } from './args.ts';
import { reportError } from './report.ts';
import { REGISTRY_FLAGS, REGISTRY_USAGE, registryOptions } from './registry-flags.ts';

const USAGE = `usage: pier push [flags] IMAGE [HOST[:PORT]/REPOSITORY[:TAG]]

flags:
  --chunk-size BYTES     upload blobs larger than this in PATCH chunks of this size (resumable)
${REGISTRY_USAGE}  -q, --quiet            print only the pushed digest
  --root DIR             state root (default $PIER_ROOT, else /var/lib/pier)
`;

export async function pushMain(argv: string[]): Promise<number> {
  let debug = false;
  let what = 'push';
  try {
    const p = parseFlags(argv, [
      { name: 'chunk-size', value: true },
      ...REGISTRY_FLAGS,
      { name: 'quiet', short: 'q' },
      { name: 'root', value: true },
      { name: 'debug' },
      { name: 'help', short: 'h' },
    ], { what: 'push' });
    debug = bool(p, 'debug');
    if (bool(p, 'help')) { writeStdout(USAGE); return 0; }
    if (p.rest.length < 1 || p.rest.length > 2) throw new PierError('push: give IMAGE and optionally a destination (see pier push --help)');
    const [source, destArg] = p.rest;
    const dest = parseRemoteReference(destArg ?? source);
    what = `push ${formatRemoteReference(dest)}`;
    const chunkSize = int(p, 'chunk-size', 'push');
    if (chunkSize !== undefined && chunkSize < 1) throw new PierError('push: --chunk-size must be at least 1');
    const svc = new ImageService({ root: str(p, 'root') });
    const quiet = bool(p, 'quiet');
    const progress = new Progress({ tty: isatty(1), quiet });
    const pusher = new Pusher(svc, dest, {
      ...registryOptions(p, svc.root, dest.host),
      chunkSize, progress,
    });
    const r = await pusher.push(source);
    writeStdout(quiet ? `${r.digest}\n` : `${formatRemoteReference({ ...dest, tag: dest.tag, digest: undefined })}: digest: ${r.digest} size: ${r.size}\n`);
    return 0;
  } catch (err) {
    return reportError(err, { what, debug });
  }
}
