/**
 * pod start / stop: the infra container first (its namespaces are what the others join), then the
 * members; stop in the other order. The pod's record keeps what the user asked for.
 */
import { messageOf } from '../../../common/errors.ts';
import type { PodRecord } from '../../api.ts';
import { start } from '../containers/start.ts';
import { stop } from '../containers/stop.ts';
import { hasProcess } from '../state.ts';
import type { PodContext } from './context.ts';

export function members(p: PodContext, pod: PodRecord): { id: string; name: string; infra: boolean }[] {
  return p.ctx.records.scan().filter((c) => c.pod === pod.id).map((c) => ({ id: c.id, name: c.name, infra: Boolean(c.infra) }))
    // oldest first: the order they were added in
    .reverse();
}

export async function startPod(p: PodContext, ref: string): Promise<PodRecord> {
  const id = p.pods.get(ref).id;
  return p.pods.lock(id, async () => {
    const pod = await p.pods.updateHeld(id, (d) => { d.status = 'running'; });
    await startInfraHeld(p, pod);
    const errors: string[] = [];
    for (const m of members(p, pod)) {
      if (m.infra) continue;
      try { await start(p.ctx, m.id); } catch (err) { errors.push(`${m.name}: ${messageOf(err)}`); }
    }
    if (errors.length) throw new Error(`pod ${pod.name}: ${errors.join('; ')}`);
    return pod;
  });
}

/** The infra container runs (a member's start needs its namespaces). */
export async function startInfraHeld(p: PodContext, pod: PodRecord): Promise<void> {
  const infra = p.ctx.records.find(pod.infraId);
  if (!infra) throw new Error(`pod ${pod.name}: its infra container is gone`);
  if (!hasProcess(infra.state.status)) await start(p.ctx, infra.id);
}

/** Before a member starts: its pod's infra runs, and the pod counts as started. */
export async function ensurePodRunning(p: PodContext, podId: string): Promise<void> {
  const pod = p.pods.find(podId);
  if (!pod) return;
  await p.pods.lock(pod.id, async () => {
    const cur = p.pods.get(pod.id);
    if (cur.status === 'removing') throw new Error(`pod ${cur.name} is being removed`);
    if (cur.status !== 'running') await p.pods.updateHeld(cur.id, (d) => { d.status = 'running'; });
    await startInfraHeld(p, cur);
  });
}

export async function stopPod(p: PodContext, ref: string, timeoutSec?: number): Promise<PodRecord> {
  const id = p.pods.get(ref).id;
  return p.pods.lock(id, async () => {
    const pod = p.pods.get(id);
    const next = pod.status === 'created' ? pod : await p.pods.updateHeld(id, (d) => { d.status = 'stopped'; });
    const ms = members(p, pod);
    await Promise.all(ms.filter((m) => !m.infra).map((m) => stop(p.ctx, m.id, timeoutSec).catch((err) => p.ctx.log.warn(`pod ${pod.name}: stop ${m.name}: ${messageOf(err)}`))));
    await stop(p.ctx, pod.infraId, timeoutSec).catch((err) => p.ctx.log.warn(`pod ${pod.name}: stop infra: ${messageOf(err)}`));
    return next;
  });
}
