/**
 * pod rm: everything the pod owns — its containers, its infra container (and with it the network
 * sandbox: netns, veth, port rules), its cgroup parent, its record. A pod with running containers
 * needs --force. Marked removing first, so no container can join it meanwhile.
 */
import { messageOf } from '../../../common/errors.ts';
import { conflict } from '../errors.ts';
import { remove } from '../containers/remove.ts';
import { isActive } from '../state.ts';
import type { PodContext } from './context.ts';
import { members } from './lifecycle.ts';

export async function removePod(p: PodContext, ref: string, opts: { force?: boolean } = {}): Promise<string> {
  const id = p.pods.get(ref).id;
  return p.pods.lock(id, async () => {
    const pod = p.pods.get(id);
    const ms = members(p, pod);
    const up = ms.filter((m) => !m.infra && isActive(p.ctx.records.find(m.id)?.state.status ?? 'exited'));
    const infraUp = isActive(p.ctx.records.find(pod.infraId)?.state.status ?? 'exited');
    if (!opts.force && (up.length || infraUp)) {
      throw conflict(`pod ${pod.name} is running${up.length ? ` (${up.map((m) => m.name).join(', ')})` : ''}: stop it first or use --force`);
    }
    if (pod.status !== 'removing') await p.pods.updateHeld(id, (d) => { d.status = 'removing'; });
    // members first: they are in the infra's namespaces
    for (const m of ms.filter((x) => !x.infra)) await remove(p.ctx, m.id, { force: true, volumes: true, podOwned: true }).catch((err) => { if ((err as { status?: number }).status !== 404) throw err; });
    await remove(p.ctx, pod.infraId, { force: true, volumes: true, podOwned: true }).catch((err) => { if ((err as { status?: number }).status !== 404) throw err; });
    try { p.ctx.host.cgroups.removeParent(pod.cgroupParent); } catch (err) { p.ctx.log.warn(`pod ${pod.name}: cgroup ${pod.cgroupParent}: ${messageOf(err)}`); }
    p.pods.delete(id);
    return id;
  });
}
