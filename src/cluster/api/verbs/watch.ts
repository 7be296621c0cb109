/**
 * GET with `watch=1`: the changes after a resourceVersion, as `{type, object}` events
 * (ADDED, MODIFIED, DELETED; BOOKMARK when asked, at most once a minute after events — a quiet
 * watch gets none yet; ERROR with a 410 Status when that
 * history is compacted, so the client re-lists). Without a resourceVersion (or "0"), the objects
 * there now come first as ADDED, as Kubernetes starts such a watch. Selectors filter; an object
 * that stops matching is a DELETED for this watcher, one that starts to is an ADDED.
 */
import { CompactedError, type WatchEvent } from '../../storage/index.ts';
import { decode, prefixOf, revisionOf, type ApiContext, type Target } from '../context.ts';
import { groupVersion } from '../kinds.ts';
import type { KubeObject } from '../meta.ts';
import { parseFieldSelector, parseLabelSelector } from '../selectors.ts';
import { gone } from '../status.ts';
import { list } from './list.ts';

export interface WatchQuery { labelSelector: string | null; fieldSelector: string | null; resourceVersion: string | null; allowWatchBookmarks: boolean }

export type KubeEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: KubeObject | Record<string, unknown> };

const BOOKMARK_MS = 60_000;

export async function* watch(ctx: ApiContext, t: Target, q: WatchQuery, signal: AbortSignal): AsyncGenerator<KubeEvent> {
  const labels = parseLabelSelector(q.labelSelector);
  const fields = parseFieldSelector(q.fieldSelector);
  const matches = (o: KubeObject | undefined) => Boolean(o && labels(o.metadata?.labels ?? {}) && fields(o));
  let from = revisionOf(q.resourceVersion);
  if (from === undefined) {
    const now = await list(ctx, t, { labelSelector: q.labelSelector, fieldSelector: q.fieldSelector, limit: null, continue: null, resourceVersion: null });
    for (const o of now.items) yield { type: 'ADDED', object: o };
    from = Number(now.metadata.resourceVersion);
  }
  const prefix = prefixOf(t.kind, t.namespace);
  let last = from;
  let lastBookmark = ctx.clock.now();
  const ac = new AbortController();
  const stop = () => ac.abort();
  signal.addEventListener('abort', stop, { once: true });
  try {
    for await (const batch of ctx.store.watch(prefix, from, ac.signal)) {
      for (const e of batch) {
        last = e.kv.modRevision;
        const ev = toEvent(e, matches);
        if (ev) yield ev;
      }
      if (q.allowWatchBookmarks && ctx.clock.now() - lastBookmark >= BOOKMARK_MS) {
        lastBookmark = ctx.clock.now();
        yield { type: 'BOOKMARK', object: { kind: t.kind.kind, apiVersion: groupVersion(t.kind), metadata: { resourceVersion: String(last) } } };
      }
    }
  } catch (err) {
    if (!(err instanceof CompactedError)) throw err;
    yield { type: 'ERROR', object: gone(`too old resource version: ${from} (${err.compacted})`).toJSON() };
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

function toEvent(e: WatchEvent, matches: (o: KubeObject | undefined) => boolean): KubeEvent | undefined {
  const now = decode(e.kv);
  if (e.type === 'create') return matches(now) ? { type: 'ADDED', object: now } : undefined;
  // a delete's object is the last one, at the delete's revision
  if (e.type === 'delete') return matches(now) ? { type: 'DELETED', object: now } : undefined;
  const before = e.prevKv ? decode(e.prevKv) : undefined;
  const was = matches(before), is = matches(now);
  if (was && is) return { type: 'MODIFIED', object: now };
  if (is) return { type: 'ADDED', object: now };
  if (was) return { type: 'DELETED', object: now };
  return undefined;
}
