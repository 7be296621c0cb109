/** The checks every write runs on the object it would store, before anything is written. */
import { checkMeta, type KubeObject } from '../meta.ts';
import { groupVersion, type KindInfo } from '../kinds.ts';
import { badRequest, invalid, type Cause } from '../status.ts';

const META_FIELDS = new Set(['name', 'generateName', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields', 'selfLink']);

export function checkObject(kind: KindInfo, o: unknown, namespace: string | undefined): KubeObject {
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw badRequest('the body must be a JSON object');
  const obj = o as KubeObject;
  const gv = groupVersion(kind);
  if (obj.apiVersion !== undefined && obj.apiVersion !== gv) throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${gv})`);
  if (obj.kind !== undefined && obj.kind !== kind.kind) throw badRequest(`the kind in the data (${String(obj.kind)}) does not match the expected kind (${kind.kind})`);
  // strict decoding: a field the kind does not have is refused by name, never dropped
  const unknown = Object.keys(obj).filter((k) => k !== 'apiVersion' && k !== 'kind' && k !== 'metadata' && !kind.fields.includes(k));
  const meta = obj.metadata ?? {};
  if (typeof meta !== 'object' || Array.isArray(meta)) throw badRequest('metadata must be an object');
  unknown.push(...Object.keys(meta).filter((k) => !META_FIELDS.has(k)).map((k) => `metadata.${k}`));
  if (unknown.length) throw badRequest(`strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(', ')}`);
  if (kind.namespaced && namespace && meta.namespace !== undefined && meta.namespace !== namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  const causes: Cause[] = [...checkMeta(meta, { namespaced: kind.namespaced, nameCheck: kind.nameCheck }), ...kind.validate(obj)];
  if (causes.length) throw invalid(kind.kind, String(meta.name ?? ''), causes, kind.group);
  return { ...obj, apiVersion: gv, kind: kind.kind, metadata: { ...meta, ...(kind.namespaced && namespace ? { namespace } : {}) } };
}

/** The generation goes up when anything but metadata and status changed. */
export function specChanged(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject) => JSON.stringify(Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'metadata' && k !== 'status').sort(([x], [y]) => (x < y ? -1 : 1))));
  return strip(a) !== strip(b);
}
