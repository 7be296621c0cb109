/**
 * The little of a Kubernetes object the controller framework looks at, and the list/watch contract
 * an API client implements for it. The framework never reads spec or status: a controller's
 * reconcile does, with its own types (`T extends KObject`).
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  /** The one owner (at most one per object) that manages this object: fan-in follows only it. */
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  /** Absent (or empty) for cluster-scoped kinds. */
  namespace?: string;
  uid?: string;
  /** Opaque: compared only for equality, never ordered (API conventions). */
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  creationTimestamp?: string;
  deletionTimestamp?: string;
}

export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

/**
 * What the store hands out: the same object, deeply frozen. The type says so at compile time and
 * Object.freeze at run time (a write throws in strict code), so a controller cannot change its
 * cache by accident — client-go's rule "NEVER modify objects from the store" made mechanical.
 */
export type Frozen<T> = T extends (...args: never[]) => unknown ? T
  : T extends object ? { readonly [K in keyof T]: Frozen<T[K]> }
  : T;

/** A Kubernetes `Status`, as an ERROR watch event carries it. */
export interface StatusObject {
  kind?: 'Status';
  status?: 'Failure' | 'Success';
  code: number;
  reason?: string;
  message?: string;
}

export type WatchEvent<T extends KObject = KObject> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T }
  /** Only metadata.resourceVersion is meaningful: "you have seen everything up to here". */
  | { type: 'BOOKMARK'; object: T }
  /** code 410 (Gone): the resourceVersion was compacted away; list again. */
  | { type: 'ERROR'; object: StatusObject };

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  signal?: AbortSignal;
}

export interface ListResult<T extends KObject = KObject> {
  items: T[];
  /** The collection's resourceVersion: a watch from it misses nothing that happened after the list. */
  resourceVersion: string;
}

export interface WatchOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Events strictly after this version. */
  resourceVersion: string;
  /** Aborting it must end the iterable (the informer also stops reading at once). */
  signal: AbortSignal;
}

/**
 * One kind's collection as the informer sees it; the cluster API client will implement it (the
 * tests use an in-memory one, test/helpers/cluster-fakes.ts). A watch that ends normally is resumed
 * from the last version seen; a thrown error or an ERROR event makes the informer list again.
 */
export interface ListWatch<T extends KObject = KObject> {
  list(opts: ListOptions): Promise<ListResult<T>>;
  watch(opts: WatchOptions): AsyncIterable<WatchEvent<T>>;
}

/** HTTP 410 Gone: the status code of an expired resourceVersion. */
export const GONE = 410;

/** A thrown 410 (an API client may throw instead of yielding an ERROR event) counts as Gone too. */
export function isGone(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; status?: unknown; statusCode?: unknown };
  return e.code === GONE || e.status === GONE || e.statusCode === GONE;
}

/** client-go's MetaNamespaceKeyFunc: `namespace/name`, or `name` for a cluster-scoped object. */
export function keyOf(obj: { metadata: Pick<ObjectMeta, 'name' | 'namespace'> }): string {
  const { name, namespace } = obj.metadata;
  return namespace ? `${namespace}/${name}` : name;
}

/** The inverse of keyOf: namespace is '' for a cluster-scoped key. */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** The controlling owner reference, if any (Kubernetes allows at most one with controller: true). */
export function controllerOf(obj: { metadata: { ownerReferences?: readonly Readonly<OwnerReference>[] } }): Readonly<OwnerReference> | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** The API group of an apiVersion ('apps/v1' → 'apps', 'v1' → ''). */
export function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}
