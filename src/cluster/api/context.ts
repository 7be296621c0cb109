/**
 * What every verb is given: the store, the clock, and the request's target (kind, namespace,
 * name). Keys and the encoding of objects in the store live here, once.
 */
import type { Clock } from '../../common/clock.ts';
import type { Backend, KeyValue } from '../storage/index.ts';
import type { KindInfo } from './kinds.ts';
import type { KubeObject } from './meta.ts';
import { badRequest, notFound } from './status.ts';

export interface ApiContext {
  store: Backend;
  clock: Clock;
}

export interface Target {
  kind: KindInfo;
  /** The request's namespace (namespaced kinds; absent: all namespaces for list/watch). */
  namespace?: string;
  name?: string;
}

/** `/registry/<group|core>/<resource>/[<namespace>/]<name>`: one prefix per kind and per namespace. */
export function keyOf(kind: KindInfo, namespace: string | undefined, name: string): string {
  return `${prefixOf(kind, namespace)}${name}`;
}

export function prefixOf(kind: KindInfo, namespace?: string): string {
  return `/registry/${kind.group || 'core'}/${kind.resource}/${kind.namespaced && namespace ? `${namespace}/` : ''}`;
}

/** The stored object with its resourceVersion (the revision of its last write). */
export function decode(kv: KeyValue): KubeObject {
  const o = JSON.parse(kv.value) as KubeObject;
  o.metadata = { ...o.metadata, resourceVersion: String(kv.modRevision) };
  return o;
}

/** Stored without resourceVersion: the store's revision is the one truth. */
export function encode(o: KubeObject): string {
  const meta = { ...o.metadata };
  delete meta.resourceVersion;
  return JSON.stringify({ ...o, metadata: meta });
}

/** A namespaced write needs its namespace to exist (and not be terminating). */
export async function requireNamespace(ctx: ApiContext, namespace: string, nsKind: KindInfo): Promise<void> {
  const r = await ctx.store.get(keyOf(nsKind, undefined, namespace));
  if (!r.kv) throw notFound('namespaces', namespace);
  const ns = decode(r.kv);
  if ((ns.status as { phase?: string } | undefined)?.phase === 'Terminating') throw badRequest(`namespace ${namespace} is being terminated`);
}

/** A resourceVersion query or field as a revision (opaque to clients, a number to us). */
export function revisionOf(rv: string | undefined | null): number | undefined {
  if (rv === undefined || rv === null || rv === '' || rv === '0') return undefined;
  if (!/^\d{1,15}$/.test(rv)) throw badRequest(`invalid resourceVersion ${JSON.stringify(rv)}`);
  return Number(rv);
}
