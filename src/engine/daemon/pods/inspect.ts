/** pod ls / inspect: the record with the state its containers are in (podman's pod states). */
import type { PodInfo, PodRecord } from '../../api.ts';
import { hasProcess } from '../state.ts';
import type { PodContext } from './context.ts';
import { members } from './lifecycle.ts';

export function podInfo(p: PodContext, pod: PodRecord): PodInfo {
  const containers = members(p, pod).map((m) => {
    const r = p.ctx.records.find(m.id);
    return { id: m.id, name: m.name, status: r?.state.status ?? 'removing', infra: m.infra };
  });
  const work = containers.filter((c) => !c.infra);
  const up = work.filter((c) => hasProcess(c.status)).length;
  const infraUp = containers.some((c) => c.infra && hasProcess(c.status));
  const everStarted = containers.some((c) => c.status !== 'created');
  const state: PodInfo['state'] = !everStarted ? 'Created'
    : up === work.length && infraUp ? 'Running'
    : up > 0 || infraUp ? 'Degraded'
    : 'Exited';
  return { ...pod, state, containers };
}

export function listPods(p: PodContext): PodInfo[] {
  return p.pods.all().map((pod) => podInfo(p, pod));
}

export function inspectPod(p: PodContext, ref: string): PodInfo {
  return podInfo(p, p.pods.get(ref));
}
