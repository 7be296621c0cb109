/** GET one object (at a resourceVersion when asked). */
import { CompactedError } from '../../storage/index.ts';
import { decode, keyOf, revisionOf, type ApiContext, type Target } from '../context.ts';
import type { KubeObject } from '../meta.ts';
import { gone, notFound } from '../status.ts';

export async function get(ctx: ApiContext, t: Target, rv?: string | null): Promise<KubeObject> {
  const revision = revisionOf(rv);
  try {
    const r = await ctx.store.get(keyOf(t.kind, t.namespace, t.name!), revision ? { revision } : {});
    if (!r.kv) throw notFound(t.kind.resource, t.name!, t.kind.group);
    return decode(r.kv);
  } catch (err) {
    if (err instanceof CompactedError) throw gone(`too old resource version: ${rv} (${err.compacted})`);
    throw err;
  }
}
