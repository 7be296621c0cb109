/**
 * GET a collection: at one revision (now, or the one asked for), in key order, filtered by label
 * and field selectors, paged with `limit` and an opaque `continue` token that pins the revision of
 * the first page (so pages are consistent), as Kubernetes pages.
 */
import { CompactedError } from '../../storage/index.ts';
import { decode, prefixOf, revisionOf, type ApiContext, type Target } from '../context.ts';
import { groupVersion } from '../kinds.ts';
import type { KubeObject } from '../meta.ts';
import { parseFieldSelector, parseLabelSelector } from '../selectors.ts';
import { badRequest, gone } from '../status.ts';

export interface ListQuery { labelSelector: string | null; fieldSelector: string | null; limit: string | null; continue: string | null; resourceVersion: string | null }

export interface KubeList { apiVersion: string; kind: string; metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number }; items: KubeObject[] }

function token(rev: number, after: string): string {
  return Buffer.from(JSON.stringify({ v: 1, rv: rev, after })).toString('base64url');
}

function untoken(s: string): { rv: number; after: string } {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as { v?: number; rv?: number; after?: string };
    if (t.v !== 1 || typeof t.rv !== 'number' || typeof t.after !== 'string') throw new Error('shape');
    return { rv: t.rv, after: t.after };
  } catch {
    throw badRequest(`continue key is not valid: ${JSON.stringify(s.slice(0, 60))}`);
  }
}

export async function list(ctx: ApiContext, t: Target, q: ListQuery): Promise<KubeList> {
  const labels = parseLabelSelector(q.labelSelector);
  const fields = parseFieldSelector(q.fieldSelector);
  let limit = 0;
  if (q.limit) {
    if (!/^\d{1,9}$/.test(q.limit)) throw badRequest(`invalid limit ${JSON.stringify(q.limit)}`);
    limit = Number(q.limit);
  }
  const prefix = prefixOf(t.kind, t.namespace);
  let revision = revisionOf(q.resourceVersion);
  let after: string | undefined;
  if (q.continue) ({ rv: revision, after } = untoken(q.continue));
  const items: KubeObject[] = [];
  let more = false;
  let rev = 0;
  try {
    // selectors filter after the read: read pages until this page is full or the keys run out
    for (;;) {
      const page = await ctx.store.list(prefix, { ...(after !== undefined ? { after } : {}), ...(limit ? { limit: Math.max(limit, 100) } : {}), ...(revision ? { revision } : {}) });
      rev = page.revision;
      revision = rev;
      for (const kv of page.kvs) {
        after = kv.key;
        const o = decode(kv);
        if (!labels(o.metadata?.labels ?? {}) || !fields(o)) continue;
        items.push(o);
        if (limit && items.length === limit) break;
      }
      if (limit && items.length === limit) {
        more = page.more || page.kvs[page.kvs.length - 1]?.key !== after;
        break;
      }
      if (!page.more) break;
    }
  } catch (err) {
    if (err instanceof CompactedError) throw gone(`The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.`);
    throw err;
  }
  return {
    apiVersion: groupVersion(t.kind),
    kind: `${t.kind.kind}List`,
    metadata: { resourceVersion: String(rev), ...(more && after ? { continue: token(rev, after) } : {}) },
    items,
  };
}
