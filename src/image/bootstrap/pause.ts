/**
 * `pier-pause:latest`, the image of a pod's infra container: one layer holding pier-init (static)
 * as /pause, run as `/pause --pause` (Kubernetes' pause image plays this part: hold the pod's
 * namespaces, reap, exit at SIGTERM). Made here from the build's own pier-init, since no image can
 * be fetched from the internet; deterministic like the busybox image.
 */
import { existsSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tarFromEntries } from '../layer/index.ts';
import { PierError } from '../../common/errors.ts';
import { digestOf } from '../../common/digest.ts';
import type { ContentStore, Lease } from '../store/content.ts';
import { MEDIA_TYPES, type Descriptor } from '../oci/types.ts';
import { writeImage } from '../transfer/compose.ts';
import { isStaticElf } from './busybox.ts';

export const PAUSE_REF = 'pier-pause:latest';

export async function bootstrapPause(store: ContentStore, lease: Lease, opts: { binary?: string } = {}): Promise<Descriptor> {
  const path = opts.binary;
  if (!path || !existsSync(path)) throw new PierError(`the pause image needs pier-init (${path ?? 'not built'}): run scripts/setup`);
  const binary = readFileSync(path);
  if (!isStaticElf(binary)) throw new PierError(`${path} is not a statically linked ELF binary`);
  const base = { uid: 0, gid: 0, mtime: 0, size: 0 };
  const tar = await tarFromEntries([
    { header: { ...base, name: 'dev/', type: 'directory', mode: 0o755 } },
    { header: { ...base, name: 'etc/', type: 'directory', mode: 0o755 } },
    { header: { ...base, name: 'pause', type: 'file', mode: 0o755 }, data: binary },
    { header: { ...base, name: 'proc/', type: 'directory', mode: 0o755 } },
    { header: { ...base, name: 'sys/', type: 'directory', mode: 0o755 } },
  ]);
  const gz = gzipSync(tar, { level: 9 });
  const blob = await store.write(gz, {}, lease);
  const created = new Date(0).toISOString();
  const img = await writeImage(store, {
    layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: blob.digest, size: blob.size, diffId: digestOf(tar) }],
    config: { Entrypoint: ['/pause', '--pause'], StopSignal: 'SIGTERM' },
    created,
    history: [{ created, created_by: `pier image bootstrap pause (${path})` }],
  }, lease);
  return img.descriptor;
}
