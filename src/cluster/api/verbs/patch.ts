/**
 * PATCH an object: JSON merge patch (RFC 7386), strategic merge patch (what `kubectl apply` sends),
 * JSON patch (RFC 6902), and apply patch (`kubectl apply --server-side`: creates the object when it
 * is missing). The patched object is checked like any write and written over the revision it was
 * read at, retried on a race.
 *
 * Strategic merge here merges maps and takes kubectl's directives ($patch: replace|delete,
 * $retainKeys, $setElementOrder/<list>, null deletes); lists are replaced whole. Lists merged by
 * their patch keys (containers by name) come with the kinds that have such lists.
 * Server-side apply merges the applied object like a merge patch; field managers and their
 * conflicts are not tracked yet.
 */
import type { KubeObject } from '../meta.ts';
import type { ApiContext, Target } from '../context.ts';
import { StatusError, badRequest } from '../status.ts';
import { checkObject } from './check.ts';
import { create } from './create.ts';
import { get } from './get.ts';
import { write } from './update.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function mergePatch(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, Json> = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

export function strategicMerge(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const p = { ...patch } as Record<string, Json>;
  const directive = p.$patch;
  delete p.$patch;
  if (directive === 'delete') return null;
  if (directive === 'replace') return stripDirectives(p);
  const retain = Array.isArray(p.$retainKeys) ? (p.$retainKeys as string[]) : undefined;
  delete p.$retainKeys;
  let out: Record<string, Json> = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  if (retain) out = Object.fromEntries(Object.entries(out).filter(([k]) => retain.includes(k)));
  for (const [k, v] of Object.entries(p)) {
    if (k.startsWith('$setElementOrder/') || k.startsWith('$deleteFromPrimitiveList/')) continue;
    if (v === null) delete out[k];
    else out[k] = strategicMerge(out[k] ?? null, v);
  }
  return out;
}

function stripDirectives(o: Record<string, Json>): Record<string, Json> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !k.startsWith('$')));
}

/** RFC 6902 with JSON pointers (RFC 6901); a failed `test` or a bad path is a 422 / 400. */
export function jsonPatch(doc: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw badRequest('a JSON patch must be an array of operations');
  let d: Json = structuredClone(doc);
  const parse = (path: unknown): string[] => {
    if (typeof path !== 'string' || (path !== '' && !path.startsWith('/'))) throw badRequest(`invalid JSON pointer ${JSON.stringify(path)}`);
    return path === '' ? [] : path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  };
  const parent = (root: Json, parts: string[]): { obj: Json; key: string } => {
    let cur: Json = root;
    for (const part of parts.slice(0, -1)) {
      if (cur === null || typeof cur !== 'object') throw badRequest(`path ${parts.join('/')} does not exist`);
      cur = Array.isArray(cur) ? cur[Number(part)] : cur[part];
    }
    if (cur === null || typeof cur !== 'object') throw badRequest(`path /${parts.join('/')} does not exist`);
    return { obj: cur, key: parts[parts.length - 1] };
  };
  const getAt = (root: Json, parts: string[]): Json => {
    let cur: Json = root;
    for (const part of parts) {
      if (cur === null || typeof cur !== 'object') throw badRequest(`path /${parts.join('/')} does not exist`);
      cur = (Array.isArray(cur) ? cur[Number(part)] : cur[part]) as Json;
      if (cur === undefined) throw badRequest(`path /${parts.join('/')} does not exist`);
    }
    return cur;
  };
  const put = (root: Json, parts: string[], value: Json, insert: boolean): Json => {
    if (!parts.length) return value;
    const { obj, key } = parent(root, parts);
    if (Array.isArray(obj)) {
      const i = key === '-' ? obj.length : Number(key);
      if (!Number.isInteger(i) || i < 0 || i > obj.length) throw badRequest(`index ${key} is out of range`);
      if (insert) obj.splice(i, 0, value); else obj[i] = value;
    } else (obj as Record<string, Json>)[key] = value;
    return root;
  };
  const del = (root: Json, parts: string[]): Json => {
    const { obj, key } = parent(root, parts);
    if (Array.isArray(obj)) obj.splice(Number(key), 1);
    else {
      const o = obj as Record<string, Json>;
      if (!(key in o)) throw badRequest(`path /${parts.join('/')} does not exist`);
      delete o[key];
    }
    return root;
  };
  for (const raw of ops) {
    const op = raw as { op?: string; path?: unknown; from?: unknown; value?: Json };
    const parts = parse(op.path);
    switch (op.op) {
      case 'add': d = put(d, parts, op.value ?? null, true); break;
      case 'replace': getAt(d, parts); d = put(d, parts, op.value ?? null, false); break;
      case 'remove': d = del(d, parts); break;
      case 'move': { const f = parse(op.from); const v = getAt(d, f); d = del(d, f); d = put(d, parts, v, true); break; }
      case 'copy': d = put(d, parts, structuredClone(getAt(d, parse(op.from))), true); break;
      case 'test': if (JSON.stringify(getAt(d, parts)) !== JSON.stringify(op.value)) throw new StatusError(422, 'Invalid', `the test operation at ${String(op.path)} failed`); break;
      default: throw badRequest(`unknown JSON patch operation ${JSON.stringify(op.op)}`);
    }
  }
  return d;
}

export type PatchType = 'merge' | 'strategic' | 'json' | 'apply';

export function patchTypeOf(contentType: string | undefined): PatchType {
  const ct = (contentType ?? '').split(';')[0].trim();
  if (ct === 'application/merge-patch+json') return 'merge';
  if (ct === 'application/strategic-merge-patch+json') return 'strategic';
  if (ct === 'application/json-patch+json') return 'json';
  if (ct === 'application/apply-patch+yaml') return 'apply';
  throw new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
}

export async function patch(ctx: ApiContext, t: Target, type: PatchType, body: unknown): Promise<{ obj: KubeObject; created: boolean }> {
  for (let i = 0; ; i++) {
    let cur: KubeObject;
    try {
      cur = await get(ctx, t);
    } catch (err) {
      if (type === 'apply' && (err as { code?: number }).code === 404) return { obj: await create(ctx, t, body), created: true };
      throw err;
    }
    const base = { ...cur, metadata: { ...cur.metadata } } as unknown as Json;
    const next = (type === 'json' ? jsonPatch(base, body) : type === 'strategic' ? strategicMerge(base, body as Json) : mergePatch(base, body as Json)) as KubeObject;
    const checked = checkObject(t.kind, next, t.namespace);
    if (checked.metadata?.name !== t.name) throw badRequest('a patch may not change the name');
    try {
      return { obj: await write(ctx, t, cur, checked), created: false };
    } catch (err) {
      if ((err as { reason?: string }).reason === 'Conflict' && i < 5) continue;
      throw err;
    }
  }
}
