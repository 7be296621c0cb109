/** df: what images, containers (their rootfs upper dirs) and volumes take on disk. */
import type { VolumeInfo } from '../../api.ts';
import type { ContainerContext } from '../containers/context.ts';

export interface DiskUsage {
  images: { count: number; size: number };
  containers: { count: number; running: number; size: number };
  volumes: { count: number; size: number };
}

export async function df(ctx: ContainerContext): Promise<DiskUsage> {
  const imgs = await ctx.host.images.list();
  const byKey = new Map(ctx.host.images.rootfsUsage().map((u) => [u.key, u.size]));
  const containers = ctx.records.scan();
  const vols: VolumeInfo[] = ctx.volumes.list();
  return {
    images: { count: imgs.length, size: imgs.reduce((a, i) => a + (i.size ?? 0), 0) },
    containers: {
      count: containers.length,
      running: containers.filter((c) => c.state.status === 'running').length,
      size: containers.reduce((a, c) => a + (byKey.get(`ctr-${c.id}`) ?? 0), 0),
    },
    volumes: { count: vols.length, size: vols.reduce((a, v) => a + ctx.host.proc.du(v.mountpoint), 0) },
  };
}
