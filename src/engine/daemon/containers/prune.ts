/** Prune: remove every container that runs nothing, every volume no container uses. */
import type { ContainerContext } from './context.ts';
import { remove, volumeUsers } from './remove.ts';

export async function pruneContainers(ctx: ContainerContext): Promise<string[]> {
  const out: string[] = [];
  for (const c of ctx.records.all()) {
    if (c.state.status === 'exited' || c.state.status === 'created' || c.state.status === 'dead') {
      await remove(ctx, c.id, { volumes: true });
      out.push(c.id);
    }
  }
  return out;
}

export function removeVolume(ctx: ContainerContext, name: string): void {
  ctx.volumes.remove(name, volumeUsers(ctx, name));
}

export function pruneVolumes(ctx: ContainerContext): string[] {
  const removed: string[] = [];
  for (const v of ctx.volumes.list()) {
    if (volumeUsers(ctx, v.name).length === 0) {
      ctx.volumes.remove(v.name);
      removed.push(v.name);
    }
  }
  return removed;
}
