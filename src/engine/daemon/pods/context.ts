/** What the pod operations are given: the container context and the pod records. */
import type { ContainerContext } from '../containers/context.ts';
import type { PodRecords } from './store.ts';

export interface PodContext {
  ctx: ContainerContext;
  pods: PodRecords;
}
