/** POST a collection: check, fill in what the server owns, write if the name is free (201). */
import { randomBytes } from 'node:crypto';
import { KeyExistsError } from '../../storage/index.ts';
import { decode, encode, keyOf, requireNamespace, type ApiContext, type Target } from '../context.ts';
import { KINDS } from '../kinds.ts';
import { initMeta, type KubeObject } from '../meta.ts';
import { alreadyExists, badRequest } from '../status.ts';
import { checkObject } from './check.ts';

const NS_KIND = KINDS.find((k) => k.kind === 'Namespace')!;

export async function create(ctx: ApiContext, t: Target, body: unknown): Promise<KubeObject> {
  const b = body as KubeObject;
  // generateName: the server picks the suffix (5 characters, as Kubernetes does)
  if (b && typeof b === 'object' && b.metadata && !b.metadata.name && typeof b.metadata.generateName === 'string') {
    b.metadata = { ...b.metadata, name: `${b.metadata.generateName}${randomBytes(4).toString('hex').slice(0, 5)}` };
  }
  if (t.kind.namespaced && !t.namespace) throw badRequest(`${t.kind.resource} is namespaced: create it in a namespace`);
  const obj = checkObject(t.kind, body, t.namespace);
  if (t.kind.namespaced) await requireNamespace(ctx, t.namespace!, NS_KIND);
  t.kind.prepare?.(obj);
  obj.metadata = initMeta(obj.metadata!, new Date(ctx.clock.now()));
  const name = obj.metadata.name!;
  try {
    const r = await ctx.store.create(keyOf(t.kind, t.namespace, name), encode(obj));
    return decode(r.kv!);
  } catch (err) {
    if (err instanceof KeyExistsError) throw alreadyExists(t.kind.resource, name, t.kind.group);
    throw err;
  }
}
