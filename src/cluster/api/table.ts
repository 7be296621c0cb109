/**
 * `as=Table` answers, so `kubectl get` prints Kubernetes' columns: NAME, the kind's own, AGE. kubectl
 * prints the cells verbatim, so the server renders them (AGE as `5s`, `3m`, `2d`, as kubectl does).
 */
import type { KindInfo } from './kinds.ts';
import type { KubeObject } from './meta.ts';

/** Does the Accept header ask for a Table? */
export function wantsTable(accept: string | undefined): boolean {
  return Boolean(accept && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept));
}

export function age(created: string | undefined, now: number): string {
  if (!created) return '<unknown>';
  const s = Math.max(0, Math.floor((now - Date.parse(created)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return `${d}d${h % 24 ? `${h % 24}h` : ''}`;
  return `${d}d`;
}

function partial(o: KubeObject): Record<string, unknown> {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
}

export function toTable(kind: KindInfo, items: KubeObject[], resourceVersion: string | undefined, now: number, cont?: string): Record<string, unknown> {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { ...(resourceVersion ? { resourceVersion } : {}), ...(cont ? { continue: cont } : {}) },
    columnDefinitions: [
      { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
      ...kind.columns,
      { name: 'Age', type: 'string', format: '', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.', priority: 0 },
    ],
    rows: items.map((o) => ({ cells: [o.metadata?.name ?? '', ...kind.cells(o), age(o.metadata?.creationTimestamp, now)], object: partial(o) })),
  };
}
