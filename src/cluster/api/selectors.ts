/**
 * Label and field selectors as Kubernetes parses them: `a=b,c!=d,e in (x,y),f notin (z),g,!h`;
 * fields: `metadata.name=x,metadata.namespace!=y` (the fields every kind supports). A selector
 * that does not parse is a 400 naming it.
 */
import type { KubeObject } from './meta.ts';
import { badRequest } from './status.ts';

type Req = { key: string; op: 'in' | 'notin' | 'exists' | '!exists'; values: string[] };

/** Split at commas that are not inside parentheses. */
function terms(s: string): string[] {
  const out: string[] = [];
  let depth = 0, cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { out.push(cur); cur = ''; continue; }
    cur += ch;
  }
  if (cur.trim() || out.length) out.push(cur);
  return out.map((t) => t.trim());
}

export function parseLabelSelector(s: string | null): (labels: Record<string, string>) => boolean {
  if (!s) return () => true;
  const reqs: Req[] = [];
  for (const t of terms(s)) {
    let m: RegExpExecArray | null;
    if ((m = /^([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t))) reqs.push({ key: m[1], op: m[2] as 'in' | 'notin', values: m[3].split(',').map((v) => v.trim()).filter(Boolean) });
    else if ((m = /^([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$/.exec(t))) reqs.push({ key: m[1], op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]] });
    else if ((m = /^!([A-Za-z0-9./_-]+)$/.exec(t))) reqs.push({ key: m[1], op: '!exists', values: [] });
    else if ((m = /^([A-Za-z0-9./_-]+)$/.exec(t))) reqs.push({ key: m[1], op: 'exists', values: [] });
    else throw badRequest(`unable to parse requirement: ${JSON.stringify(t)} in label selector ${JSON.stringify(s)}`);
  }
  return (labels) => reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    switch (r.op) {
      case 'exists': return has;
      case '!exists': return !has;
      case 'in': return has && r.values.includes(labels[r.key]);
      case 'notin': return !has || !r.values.includes(labels[r.key]);
    }
  });
}

const FIELDS: Record<string, (o: KubeObject) => string | undefined> = {
  'metadata.name': (o) => o.metadata?.name,
  'metadata.namespace': (o) => o.metadata?.namespace,
};

export function parseFieldSelector(s: string | null): (o: KubeObject) => boolean {
  if (!s) return () => true;
  const reqs = terms(s).map((t) => {
    const m = /^([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
    if (!m) throw badRequest(`invalid field selector ${JSON.stringify(s)}`);
    const get = FIELDS[m[1]];
    if (!get) throw badRequest(`field label not supported: ${m[1]}`);
    return { get, neg: m[2] === '!=', value: m[3] };
  });
  return (o) => reqs.every((r) => (r.get(o) === r.value) !== r.neg);
}
