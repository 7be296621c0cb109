/**
 * A container made into a pod (`pier run --pod P`): under the pod's lock, so a pod being removed
 * takes no new members; the pod's infra must exist. What it shares is podShares' in create.ts.
 */
import type { ContainerInfo, CreateRequest } from '../../api.ts';
import { conflict } from '../errors.ts';
import { create } from '../containers/create.ts';
import type { PodContext } from './context.ts';

export function createMember(p: PodContext, req: CreateRequest): Promise<ContainerInfo> {
  const pod = p.pods.get(req.pod!);
  return p.pods.lock(pod.id, async () => {
    const cur = p.pods.get(pod.id);
    if (cur.status === 'removing') throw conflict(`pod ${cur.name} is being removed`);
    if (cur.status === 'stopped') throw conflict(`pod ${cur.name} is stopped: start it first (pier pod start ${cur.name})`);
    if (!p.ctx.records.find(cur.infraId)) throw conflict(`pod ${cur.name} has lost its infra container: remove the pod`);
    const { pod: _ref, ...rest } = req;
    return create(p.ctx, rest, { pod: cur });
  });
}
