/**
 * DELETE an object (its resourceVersion checked when the body's preconditions name one), and
 * DELETE a collection. A Namespace is marked Terminating first (no new objects may be made in it)
 * and its contents go after the answer, then the Namespace itself — as Kubernetes' namespace
 * controller does it, so `kubectl delete -f` of a manifest that holds the namespace and its
 * objects still finds each object to delete. (The controller framework will take this over.)
 */
import { decode, encode, keyOf, prefixOf, type ApiContext, type Target } from '../context.ts';
import { KINDS } from '../kinds.ts';
import type { KubeObject } from '../meta.ts';
import { conflict, notFound } from '../status.ts';
import { get } from './get.ts';
import { list, type ListQuery } from './list.ts';

export async function remove(ctx: ApiContext, t: Target, body?: unknown): Promise<KubeObject> {
  const pre = (body as { preconditions?: { resourceVersion?: string; uid?: string } } | undefined)?.preconditions;
  const cur = await get(ctx, t);
  if (pre?.uid && pre.uid !== cur.metadata?.uid) throw conflict(t.kind.resource, t.name!, t.kind.group);
  if (pre?.resourceVersion && pre.resourceVersion !== cur.metadata?.resourceVersion) throw conflict(t.kind.resource, t.name!, t.kind.group);
  if (t.kind.kind === 'Namespace') return terminate(ctx, t, cur);
  const r = await ctx.store.delete(keyOf(t.kind, t.namespace, t.name!), Number(cur.metadata!.resourceVersion));
  if (!r.ok) throw r.kv ? conflict(t.kind.resource, t.name!, t.kind.group) : notFound(t.kind.resource, t.name!, t.kind.group);
  return decode(r.kv!);
}

export async function removeCollection(ctx: ApiContext, t: Target, q: ListQuery): Promise<KubeObject[]> {
  const { items } = await list(ctx, t, { ...q, limit: null, continue: null });
  const out: KubeObject[] = [];
  for (const o of items) {
    try {
      out.push(await remove(ctx, { ...t, ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}), name: o.metadata!.name! }));
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
  }
  return out;
}

async function terminate(ctx: ApiContext, t: Target, cur: KubeObject): Promise<KubeObject> {
  if ((cur.status as { phase?: string } | undefined)?.phase === 'Terminating') return cur;
  const marked: KubeObject = { ...cur, metadata: { ...cur.metadata, deletionTimestamp: new Date(ctx.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z') }, status: { phase: 'Terminating' } };
  const r = await ctx.store.update(keyOf(t.kind, undefined, t.name!), encode(marked), Number(cur.metadata!.resourceVersion));
  if (!r.ok) throw r.kv ? conflict(t.kind.resource, t.name!) : notFound(t.kind.resource, t.name!);
  void purge(ctx, t).catch(() => undefined);
  return decode(r.kv!);
}

/**
 * Everything in the namespace, then the namespace (what the namespace controller does), after a
 * short grace: Kubernetes' controller takes seconds too, and a `kubectl delete -f` that lists the
 * namespace first deletes the rest of the file itself meanwhile (else it would meet NotFound).
 */
const PURGE_GRACE_MS = 2000;

async function purge(ctx: ApiContext, t: Target): Promise<void> {
  await ctx.clock.sleep(PURGE_GRACE_MS);
  for (const k of KINDS.filter((x) => x.namespaced)) {
    const items = await ctx.store.list(prefixOf(k, t.name));
    for (const kv of items.kvs) await ctx.store.delete(kv.key);
  }
  await ctx.store.delete(keyOf(t.kind, undefined, t.name!));
}
