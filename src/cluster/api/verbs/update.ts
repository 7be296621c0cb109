/**
 * PUT an object: the body replaces it, checked like a create, with what the server owns carried
 * over (uid, creationTimestamp; generation one up when more than metadata changed). A body with a
 * resourceVersion is written only over that revision (409 otherwise); without one the update is
 * unconditional, as Kubernetes allows for these kinds. `write` is what patch uses too.
 */
import { decode, encode, keyOf, revisionOf, type ApiContext, type Target } from '../context.ts';
import type { KubeObject } from '../meta.ts';
import { badRequest, conflict, notFound } from '../status.ts';
import { checkObject, specChanged } from './check.ts';
import { get } from './get.ts';

export async function update(ctx: ApiContext, t: Target, body: unknown): Promise<KubeObject> {
  const obj = checkObject(t.kind, body, t.namespace);
  if (obj.metadata?.name !== t.name) throw badRequest(`the name of the object (${String(obj.metadata?.name)}) does not match the name on the URL (${t.name})`);
  const expected = revisionOf(obj.metadata?.resourceVersion);
  for (let i = 0; ; i++) {
    const cur = await get(ctx, t);
    if (expected !== undefined && String(expected) !== cur.metadata!.resourceVersion) throw conflict(t.kind.resource, t.name!, t.kind.group);
    try {
      return await write(ctx, t, cur, obj);
    } catch (err) {
      // unconditional: a write that lost a race is tried again on the new state
      if (expected === undefined && (err as { reason?: string }).reason === 'Conflict' && i < 5) continue;
      throw err;
    }
  }
}

/** Write `next` over `cur` (its revision expected), keeping what the server owns. */
export async function write(ctx: ApiContext, t: Target, cur: KubeObject, next: KubeObject): Promise<KubeObject> {
  const m = cur.metadata!;
  const obj: KubeObject = { ...next, metadata: { ...next.metadata, uid: m.uid, creationTimestamp: m.creationTimestamp, generation: m.generation ?? 1, ...(t.kind.namespaced ? { namespace: m.namespace } : {}) } };
  t.kind.prepare?.(obj);
  if (specChanged(cur, obj)) obj.metadata!.generation = (m.generation ?? 1) + 1;
  const r = await ctx.store.update(keyOf(t.kind, t.namespace, t.name!), encode(obj), Number(m.resourceVersion));
  if (!r.ok) throw r.kv ? conflict(t.kind.resource, t.name!, t.kind.group) : notFound(t.kind.resource, t.name!, t.kind.group);
  return decode(r.kv!);
}
