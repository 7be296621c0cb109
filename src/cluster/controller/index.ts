/** The controller framework: what cluster controllers import (never the files behind it). */
export { Controller, type ControllerOptions, type ReconcileResult, type WatchSource } from './controller.ts';
export { Informer, WatchStatusError, type EventHandler, type InformerOptions } from './informer.ts';
export { NAMESPACE_INDEX, byOwnerUid, frozenCopy, type IndexFunc, type Lister } from './store.ts';
export {
  GONE, controllerOf, groupOf, isGone, keyOf, splitKey,
  type Frozen, type KObject, type ListOptions, type ListResult, type ListWatch, type ObjectMeta,
  type OwnerReference, type StatusObject, type WatchEvent, type WatchOptions,
} from './types.ts';
