/**
 * The kinds the API server serves, one entry each: where they live (group, version, resource,
 * namespaced), how kubectl names them (short names, categories), what is valid, what the server
 * fills in, and the columns of `kubectl get`. Unknown fields are refused with the field named
 * (Kubernetes' strict decoding), never dropped.
 */
import type { Cause } from './status.ts';
import type { KubeObject } from './meta.ts';

export interface Column { name: string; type: string; format?: string; description: string; priority: number }

export interface KindInfo {
  group: string;
  version: string;
  kind: string;
  /** Plural, lower case: the path segment. */
  resource: string;
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  verbs: string[];
  /** metadata.name's rule (Namespaces: a DNS-1123 label). */
  nameCheck: 'subdomain' | 'label';
  /** Top-level fields beside apiVersion, kind, metadata. */
  fields: string[];
  /** Field checks beyond metadata (causes name the field). */
  validate(obj: KubeObject): Cause[];
  /** What the server fills in or normalizes before a write (Secret: stringData → data). */
  prepare?(obj: KubeObject): void;
  /** Cells after NAME, before AGE. */
  columns: Column[];
  cells(obj: KubeObject): unknown[];
  /** The user-owned part whose change bumps metadata.generation (absent: any change but status). */
  spec?: string;
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

function stringMap(v: unknown, field: string, opts: { base64?: boolean } = {}): Cause[] {
  if (v === undefined || v === null) return [];
  if (typeof v !== 'object' || Array.isArray(v)) return [{ type: 'FieldValueInvalid', field, message: 'Invalid value: must be an object of strings' }];
  const out: Cause[] = [];
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!CONFIG_KEY.test(k) || k.length > 253) out.push({ type: 'FieldValueInvalid', field: `${field}[${k}]`, message: `Invalid value: "${k}": a valid config key must consist of alphanumeric characters, '-', '_' or '.'` });
    if (typeof val !== 'string') out.push({ type: 'FieldValueTypeInvalid', field: `${field}[${k}]`, message: 'Invalid value: must be a string' });
    else if (opts.base64 && !/^[A-Za-z0-9+/]*={0,2}$/.test(val)) out.push({ type: 'FieldValueInvalid', field: `${field}[${k}]`, message: 'Invalid value: illegal base64 data' });
  }
  return out;
}

function count(v: unknown): number {
  return v && typeof v === 'object' ? Object.keys(v).length : 0;
}

const namespace: KindInfo = {
  group: '', version: 'v1', kind: 'Namespace', resource: 'namespaces', singular: 'namespace', namespaced: false, shortNames: ['ns'],
  verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], nameCheck: 'label', fields: ['spec', 'status'],
  validate: () => [],
  prepare(obj) {
    obj.spec = { finalizers: ['kubernetes'], ...(obj.spec as object ?? {}) };
    obj.status = { phase: 'Active' };
  },
  columns: [{ name: 'Status', type: 'string', description: 'The phase of the namespace', priority: 0 }],
  cells: (o) => [(o.status as { phase?: string } | undefined)?.phase ?? 'Active'],
};

const configMap: KindInfo = {
  group: '', version: 'v1', kind: 'ConfigMap', resource: 'configmaps', singular: 'configmap', namespaced: true, shortNames: ['cm'],
  verbs: ALL_VERBS, nameCheck: 'subdomain', fields: ['data', 'binaryData', 'immutable'],
  validate(o) {
    const c = [...stringMap(o.data, 'data'), ...stringMap(o.binaryData, 'binaryData', { base64: true })];
    for (const k of Object.keys((o.data as object) ?? {})) if (k in ((o.binaryData as object) ?? {})) c.push({ type: 'FieldValueInvalid', field: `data[${k}]`, message: 'Invalid value: duplicate of key present in binaryData' });
    if (o.immutable !== undefined && typeof o.immutable !== 'boolean') c.push({ type: 'FieldValueTypeInvalid', field: 'immutable', message: 'Invalid value: must be a boolean' });
    return c;
  },
  columns: [{ name: 'Data', type: 'integer', description: 'Number of keys', priority: 0 }],
  cells: (o) => [count(o.data) + count(o.binaryData)],
};

const secret: KindInfo = {
  group: '', version: 'v1', kind: 'Secret', resource: 'secrets', singular: 'secret', namespaced: true,
  verbs: ALL_VERBS, nameCheck: 'subdomain', fields: ['data', 'stringData', 'type', 'immutable'],
  validate(o) {
    const c = [...stringMap(o.data, 'data', { base64: true }), ...stringMap(o.stringData, 'stringData')];
    if (o.type !== undefined && typeof o.type !== 'string') c.push({ type: 'FieldValueTypeInvalid', field: 'type', message: 'Invalid value: must be a string' });
    return c;
  },
  prepare(o) {
    // a real server folds stringData into data (base64) and keeps no stringData
    const sd = o.stringData as Record<string, string> | undefined;
    if (sd) {
      const data = { ...(o.data as Record<string, string> | undefined) };
      for (const [k, v] of Object.entries(sd)) data[k] = Buffer.from(v, 'utf8').toString('base64');
      o.data = data;
      delete o.stringData;
    }
    o.type ??= 'Opaque';
  },
  columns: [{ name: 'Type', type: 'string', description: 'The type of the secret', priority: 0 }, { name: 'Data', type: 'integer', description: 'Number of keys', priority: 0 }],
  cells: (o) => [o.type ?? 'Opaque', count(o.data)],
};

export const KINDS: KindInfo[] = [namespace, configMap, secret];

export function groupVersion(k: KindInfo): string {
  return k.group ? `${k.group}/${k.version}` : k.version;
}

export function kindByResource(group: string, version: string, resource: string): KindInfo | undefined {
  return KINDS.find((k) => k.group === group && k.version === version && k.resource === resource);
}
