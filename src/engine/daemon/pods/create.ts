/**
 * pod create: the pod's record and its infra container — the pause process that holds the pod's
 * namespaces, its network sandbox (CNI, published ports, DNS) and its hostname — made from the
 * local pause image (made on first use from pier-init). Nothing is left when a step fails.
 */
import { PierError, messageOf } from '../../../common/errors.ts';
import { PAUSE_REF } from '../../../image/index.ts';
import type { ContainerInfo, CreateRequest, PodCreateRequest, PodRecord, PodShare } from '../../api.ts';
import { conflict } from '../errors.ts';
import { newId, validateName } from '../store.ts';
import { create, type PodMembership } from '../containers/create.ts';
import { remove } from '../containers/remove.ts';
import type { PodContext } from './context.ts';

const DEFAULT_SHARE: PodShare[] = ['net', 'ipc', 'uts'];
export const POD_LABEL = 'io.pier.pod';

export async function createPod(p: PodContext, req: PodCreateRequest): Promise<PodRecord> {
  const { ctx, pods } = p;
  const id = newId();
  const name = req.name ? validateName(req.name) : `pod_${ctx.records.generateName()}`;
  if (pods.nameTaken(name)) throw conflict(`pod name "${name}" is already in use: remove it or pick another name`);
  const share = [...new Set(req.share ?? DEFAULT_SHARE)];
  if (!share.includes('net') && (req.ports?.length || req.network)) throw new PierError('--network and -p need the pod to share its network (--share net)');
  if (!share.includes('uts') && req.hostname) throw new PierError('--hostname needs the pod to share its UTS namespace (--share uts)');
  const infraName = `${name}-infra`;
  const taken = ctx.records.nameTaken(infraName);
  if (taken) throw conflict(`the pod's infra container name "${infraName}" is already in use by container ${taken.id.slice(0, 12)}`);
  await ensurePauseImage(p);
  const rec: PodRecord = {
    id, revision: 1, name, created: new Date(ctx.host.clock.now()).toISOString(), labels: req.labels ?? {},
    hostname: req.hostname ?? name, share, network: req.network ?? 'bridge', ports: req.ports ?? [],
    infraId: '', cgroupParent: `/pier/pod-${id.slice(0, 12)}`, status: 'created',
  };
  const infraReq: CreateRequest = {
    image: PAUSE_REF, name: infraName,
    ...(req.network ? { network: req.network } : {}),
    ...(req.ports?.length ? { ports: req.ports } : {}),
    ...(share.includes('uts') ? { hostname: rec.hostname } : {}),
    labels: { ...rec.labels, [POD_LABEL]: name },
  };
  const member: PodMembership = { pod: rec, infra: true };
  // no lock: the id is new, and a second create of the name loses at the infra's name reservation
  const infra: ContainerInfo = await create(ctx, infraReq, member);
  try {
    return pods.insert({ ...rec, infraId: infra.id });
  } catch (err) {
    await remove(ctx, infra.id, { force: true, podOwned: true }).catch((e) => ctx.log.warn(`pod ${name}: removing its infra: ${messageOf(e)}`));
    throw err;
  }
}

/** The pause image, made here from pier-init when it is not there yet (no image can be pulled). */
async function ensurePauseImage(p: PodContext): Promise<void> {
  const { ctx } = p;
  try {
    await ctx.host.images.resolve(PAUSE_REF);
  } catch {
    const binary = ctx.host.initBinary();
    if (!binary) throw new PierError('pods need pier-init for their pause image: run scripts/setup');
    await ctx.host.images.bootstrap('pause', { binary });
  }
}
