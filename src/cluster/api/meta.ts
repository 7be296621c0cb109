/**
 * Object metadata as the API server keeps it: names (DNS-1123, as Kubernetes checks them), labels
 * and annotations, and what the server sets (uid, creationTimestamp, generation,
 * resourceVersion). Checks return causes naming the field, for an `Invalid` Status.
 */
import { randomUUID } from 'node:crypto';
import type { Cause } from './status.ts';
import type { ObjectMeta as BaseMeta } from '../controller/index.ts';

/**
 * The controller framework's metadata (one definition for the layer), as a request may carry it:
 * every field optional until the server has checked it, plus what only requests send.
 */
export type ObjectMeta = Partial<BaseMeta> & {
  generateName?: string;
  managedFields?: unknown[];
  [k: string]: unknown;
};

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [k: string]: unknown;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export function checkSubdomain(v: string, field: string): Cause[] {
  if (v.length > 253) return [{ type: 'FieldValueInvalid', field, message: `Invalid value: "${v}": must be no more than 253 characters` }];
  if (!DNS1123_SUBDOMAIN.test(v)) return [{ type: 'FieldValueInvalid', field, message: `Invalid value: "${v}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')` }];
  return [];
}

export function checkLabel(v: string, field: string): Cause[] {
  if (v.length > 63 || !DNS1123_LABEL.test(v)) return [{ type: 'FieldValueInvalid', field, message: `Invalid value: "${v}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')` }];
  return [];
}

/** A qualified name (`prefix/name`), as label and annotation keys are. */
function checkQualified(k: string, field: string): Cause[] {
  const parts = k.split('/');
  const name = parts.length === 2 ? parts[1] : parts[0];
  if (parts.length > 2 || (parts.length === 2 && checkSubdomain(parts[0], field).length) || !name || name.length > 63 || !LABEL_NAME.test(name)) {
    return [{ type: 'FieldValueInvalid', field, message: `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character` }];
  }
  return [];
}

export function checkMeta(meta: ObjectMeta, opts: { namespaced: boolean; nameCheck: 'subdomain' | 'label' }): Cause[] {
  const causes: Cause[] = [];
  if (!meta.name) causes.push({ type: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' });
  else causes.push(...(opts.nameCheck === 'label' ? checkLabel(meta.name, 'metadata.name') : checkSubdomain(meta.name, 'metadata.name')));
  for (const [k, v] of Object.entries(meta.labels ?? {})) {
    causes.push(...checkQualified(k, 'metadata.labels'));
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) causes.push({ type: 'FieldValueInvalid', field: 'metadata.labels', message: `Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character` });
  }
  for (const k of Object.keys(meta.annotations ?? {})) causes.push(...checkQualified(k, 'metadata.annotations'));
  const size = Object.entries(meta.annotations ?? {}).reduce((a, [k, v]) => a + k.length + String(v).length, 0);
  if (size > 256 * 1024) causes.push({ type: 'FieldValueTooLong', field: 'metadata.annotations', message: `Too long: must have at most 262144 bytes` });
  return causes;
}

/** What the server sets on a new object. */
export function initMeta(meta: ObjectMeta, now: Date): ObjectMeta {
  const out: ObjectMeta = { ...meta, uid: randomUUID(), creationTimestamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z'), generation: 1 };
  delete out.resourceVersion;
  delete out.deletionTimestamp;
  return out;
}
