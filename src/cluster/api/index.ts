/**
 * src/cluster/api: the Kubernetes-compatible API server (issue 12, being built). Today: discovery,
 * Namespaces, ConfigMaps and Secrets with create/get/list/update/patch/delete/deletecollection and
 * watch over the cluster store (../storage), Tables for kubectl get, Status errors.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { realClock, type Clock } from '../../common/clock.ts';
import type { Backend } from '../storage/index.ts';
import { keyOf, encode } from './context.ts';
import { KINDS } from './kinds.ts';
import { initMeta } from './meta.ts';
import { createApiServer } from './server.ts';

export { createApiServer } from './server.ts';
export { KINDS } from './kinds.ts';
export { StatusError } from './status.ts';

/** The namespaces every cluster has. */
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export async function ensureSystemNamespaces(store: Backend, clock: Clock = realClock): Promise<void> {
  const ns = KINDS.find((k) => k.kind === 'Namespace')!;
  for (const name of SYSTEM_NAMESPACES) {
    const key = keyOf(ns, undefined, name);
    if ((await store.get(key)).kv) continue;
    const obj = { apiVersion: 'v1', kind: 'Namespace', metadata: initMeta({ name }, new Date(clock.now())), spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
    await store.create(key, encode(obj)).catch(() => undefined);
  }
}

export interface ApiServer { server: Server; url: string; close(): Promise<void> }

/** Serve the API on host:port (port 0: any free one). */
export async function startApiServer(opts: { store: Backend; host?: string; port?: number; clock?: Clock }): Promise<ApiServer> {
  const clock = opts.clock ?? realClock;
  await ensureSystemNamespaces(opts.store, clock);
  const server = createApiServer({ store: opts.store, clock });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const a = server.address() as AddressInfo;
  return {
    server,
    url: `http://${a.address}:${a.port}`,
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}
