/**
 * `pier manifest …`: multi-platform images (manifest lists, OCI indexes) as podman and docker
 * name them — create one from local images, add to it, inspect one here or in a registry, push it
 * (with every platform's image), remove it.
 */
import { writeStdout } from '../common/log.ts';
import { PierError } from '../common/errors.ts';
import { ImageService, formatReference, parseReference } from '../image/index.ts';
import { RegistryClient, parseRemoteReference } from '../registry/index.ts';
import { bool, parseFlags, str, type Parsed } from './args.ts';
import { reportError } from './report.ts';
import { REGISTRY_FLAGS, REGISTRY_USAGE, registryOptions } from './registry-flags.ts';

const USAGE = `usage: pier manifest <command> [flags] …

commands:
  create [--amend] LIST IMAGE...   a manifest list of local images, one per platform (from each
                                   image's config); --amend adds to an existing LIST
  add LIST IMAGE...                add images to LIST (one of a platform LIST has replaces it)
  inspect [flags] NAME             the manifest or index NAME names, here or else in its registry
  push [flags] LIST [DESTINATION]  push LIST and every image in it (same as pier push)
  rm LIST...                       remove manifest lists (the images in them stay while tagged)

flags of inspect (and push):
${REGISTRY_USAGE}  --root DIR             state root (default $PIER_ROOT, else /var/lib/pier)
`;

function args(p: Parsed, min: number, what: string): string[] {
  if (p.rest.length < min) throw new PierError(`manifest ${what}: missing arguments (see pier manifest --help)`);
  return p.rest;
}

export async function manifestMain(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  let debug = false;
  try {
    if (!sub || sub === '--help' || sub === '-h' || sub === 'help') { writeStdout(USAGE); return sub ? 0 : 1; }
    if (sub === 'push') return (await import('./push.ts')).pushMain(rest);
    const flags = [{ name: 'root', value: true }, { name: 'debug' }, { name: 'help', short: 'h' },
      ...(sub === 'create' ? [{ name: 'amend' }] : []), ...(sub === 'inspect' ? REGISTRY_FLAGS : [])];
    const p = parseFlags(rest, flags, { what: `manifest ${sub}` });
    debug = bool(p, 'debug');
    if (bool(p, 'help')) { writeStdout(USAGE); return 0; }
    const svc = new ImageService({ root: str(p, 'root') });
    switch (sub) {
      case 'create':
      case 'add': {
        const [list, ...images] = args(p, sub === 'create' ? 1 : 2, sub);
        const r = await svc.createIndex(list, images, { amend: sub === 'add' || bool(p, 'amend') });
        writeStdout(`${r.ref}: ${r.descriptor.digest} (${r.platforms.join(', ') || 'no platforms yet'})\n`);
        return 0;
      }
      case 'inspect': {
        const [name] = args(p, 1, 'inspect');
        writeStdout(`${JSON.stringify(JSON.parse((await manifestBytes(svc, name, p)).toString('utf8')), null, 2)}\n`);
        return 0;
      }
      case 'rm':
      case 'remove': {
        const r = await svc.remove(args(p, 1, 'rm'));
        writeStdout(r.untagged.map((u) => `Untagged: ${u}\n`).join(''));
        return 0;
      }
      default:
        throw new PierError(`manifest: unknown command ${JSON.stringify(sub)} (see pier manifest --help)`);
    }
  } catch (err) {
    return reportError(err, { what: `manifest ${sub}`, debug });
  }
}

/** The bytes NAME names in the local store, else (a name with a registry host) in the registry. */
async function manifestBytes(svc: ImageService, name: string, p: Parsed): Promise<Buffer> {
  const local = svc.refs.get(formatReference(parseReference(name)));
  if (local) return svc.content.readBytes(local.digest);
  let remote;
  try {
    remote = parseRemoteReference(name);
  } catch {
    throw new PierError(`image ${JSON.stringify(name)} not found here, and it names no registry`);
  }
  const client = new RegistryClient(remote.host, registryOptions(p, svc.root, remote.host));
  try {
    return (await client.getManifest(remote.repository, remote.digest ?? remote.tag ?? 'latest')).bytes;
  } finally {
    client.close();
  }
}
