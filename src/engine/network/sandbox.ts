/**
 * Making and unmaking one container's network sandbox. Setup writes its plan to disk before touching
 * the kernel, and any failure runs the same teardown a later call (or a new process) would run, so
 * nothing half-made survives: no netns, veth, lease, iptables rule or record.
 */
import { existsSync } from 'node:fs';
import { PierError, messageOf } from '../../common/errors.ts';
import { deleteLink } from './bridge.ts';
import { addList, delList, type CniRuntime } from './cni.ts';
import { copiedResolvConf, embeddedResolvConf, extraHostLines, hostModeHosts, hostResolvConf, sandboxHosts } from './etc.ts';
import { createNetns, deleteNetns, netnsName, netnsPath } from './netns.ts';
import { attachmentList } from './plan.ts';
import { normalizePorts, type PortTable } from './ports.ts';
import type { Store } from './store.ts';
import type { AttachmentRecord, NetworkConfig, PortMapping, Sandbox, SandboxRecord, SandboxRequest } from './types.ts';

/** What the manager lends the sandbox code. */
export interface SandboxContext {
  store: Store;
  cniPath: string;
  log: (msg: string) => void;
  ports: PortTable;
  defaultName: string;
  lookup: (ref: string) => NetworkConfig;
  network: (id: string) => NetworkConfig | undefined;
  ensureReady: (n: NetworkConfig) => Promise<void>;
  records: Map<string, SandboxRecord>;
}

const ALIAS_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const VETH_WAIT_MS = 500;

function runtime(ctx: SandboxContext, rec: SandboxRecord, a: AttachmentRecord): CniRuntime {
  return { path: ctx.cniPath, containerId: rec.containerId, netns: rec.netnsPath ?? '', ifname: a.ifname, ...(a.runtimeConfig ? { runtimeConfig: a.runtimeConfig } : {}) };
}

export function publicView(s: SandboxRecord): Sandbox {
  return {
    containerId: s.containerId,
    mode: s.mode,
    ...(s.netnsPath ? { netnsPath: s.netnsPath } : {}),
    attachments: s.attachments.map((a) => ({ network: a.network, networkId: a.networkId, ifname: a.ifname, ip: a.ip, prefixLength: a.prefixLength, gateway: a.gateway, mac: a.mac, aliases: [...a.aliases] })),
    ports: s.ports.map((p) => ({ ...p })),
    hosts: s.hosts,
    resolvConf: s.resolvConf,
  };
}

/** The networks a bridge-mode request joins, checked: known, each once, aliases only where names resolve. */
function resolveNetworks(ctx: SandboxContext, req: SandboxRequest): { net: NetworkConfig; aliases: string[] }[] {
  const wanted = req.networks?.length ? req.networks : [{ name: ctx.defaultName }];
  const out: { net: NetworkConfig; aliases: string[] }[] = [];
  for (const w of wanted) {
    const net = ctx.lookup(w.name);
    if (out.some((o) => o.net.id === net.id)) throw new PierError(`network "${net.name}" given twice`);
    const aliases = [...new Set(w.aliases ?? [])];
    for (const al of aliases) if (!ALIAS_RE.test(al)) throw new PierError(`invalid network alias "${al}"`);
    if (aliases.length > 0 && !net.dns) throw new PierError(`network-scoped aliases are only supported for user-defined networks, not "${net.name}"`);
    out.push({ net, aliases });
  }
  return out;
}

function fillFromResult(a: AttachmentRecord, net: NetworkConfig): void {
  const r = a.result;
  const ip = r?.ips?.find((i) => i.address.includes('.'));
  if (!r || !ip) throw new PierError(`CNI bridge on ${a.network} returned no IPv4 address`);
  const [addr, len] = ip.address.split('/');
  a.ip = addr;
  a.prefixLength = Number(len);
  a.gateway = ip.gateway ?? a.gateway;
  const iface = ip.interface !== undefined ? r.interfaces?.[ip.interface] : r.interfaces?.find((i) => i.sandbox);
  a.mac = iface?.mac ?? '';
  const host = r.interfaces?.find((i) => !i.sandbox && i.name !== net.bridge);
  if (host) a.hostVeth = host.name;
}

export async function setupSandbox(ctx: SandboxContext, req: SandboxRequest): Promise<SandboxRecord> {
  const id = req.containerId;
  const mode = req.mode;
  if (mode !== 'bridge' && mode !== 'none' && mode !== 'host') throw new PierError(`invalid network mode "${String(mode)}"`);
  const base: SandboxRecord = {
    containerId: id, name: (req.name ?? '').replace(/^\//, ''), hostname: req.hostname || id.slice(0, 12), mode,
    state: 'creating', attachments: [], ports: [], hosts: '', resolvConf: '', created: new Date().toISOString(),
  };
  if (mode !== 'bridge' && req.ports?.length) ctx.log(`${id.slice(0, 12)}: published ports are discarded with network mode ${mode}`);
  if (mode === 'host') {
    const rec: SandboxRecord = { ...base, state: 'ready', hosts: hostModeHosts(extraHostLines(req.extraHosts ?? [], '127.0.0.1')), resolvConf: hostResolvConf() };
    ctx.store.saveSandbox(rec);
    ctx.records.set(id, rec);
    return rec;
  }

  // Everything that can be refused is refused before the first side effect.
  const nets = mode === 'bridge' ? resolveNetworks(ctx, req) : [];
  const gw = nets.findIndex((n) => !n.net.internal);   // the network for outbound traffic and published ports
  const extra = extraHostLines(req.extraHosts ?? [], nets[gw >= 0 ? gw : 0]?.net.gateway);
  let ports: PortMapping[] = [];
  if (mode === 'bridge' && req.ports?.length) {
    const wanted = normalizePorts(req.ports);
    if (gw < 0) throw new PierError('published ports need a network that is not internal');
    ports = ctx.ports.reserve(id, wanted);
  }
  const attachments: AttachmentRecord[] = nets.map(({ net, aliases }, i) => {
    const { list, runtimeConfig } = attachmentList(net, { ipamDataDir: ctx.store.ipam, defaultRoute: i === gw, ports: i === gw ? ports : [] });
    return { network: net.name, networkId: net.id, ifname: `eth${i}`, ip: '', prefixLength: 0, gateway: net.gateway, mac: '', aliases, dns: net.dns, list, ...(runtimeConfig ? { runtimeConfig } : {}) };
  });
  const rec: SandboxRecord = { ...base, netnsPath: netnsPath(id), attachments, ports };
  try {
    ctx.store.saveSandbox(rec);   // the plan, before any kernel object exists
  } catch (err) {
    ctx.ports.release(id);
    throw err;
  }
  ctx.records.set(id, rec);

  try {
    const ns = netnsName(id);
    await deleteNetns(ns);        // a leftover with no record: the name is this container's, nobody else's
    await createNetns(ns);   // with lo up
    // One attachment at a time: CNI allows no parallel operations on one container.
    for (const a of attachments) {
      const net = ctx.network(a.networkId);
      if (!net) throw new PierError(`network "${a.network}" not found`);
      await ctx.ensureReady(net);
      a.result = await addList(a.list, runtime(ctx, rec, a));
      fillFromResult(a, net);
    }
    const first = attachments[0];
    rec.hosts = sandboxHosts(rec.hostname, first?.ip, extra);
    const dnsAtt = attachments.find((a) => a.dns);
    rec.resolvConf = dnsAtt ? embeddedResolvConf(dnsAtt.gateway) : copiedResolvConf();
    rec.state = 'ready';
    ctx.store.saveSandbox(rec);
    return rec;
  } catch (err) {
    rec.state = 'creating';
    await teardownSandbox(ctx, id, rec).catch((e) => ctx.log(`undoing the failed network setup of ${id.slice(0, 12)}: ${messageOf(e)}`));
    throw err;
  }
}

/** Poll until a link is gone; remove it ourselves if the kernel does not (its netns is still held). */
async function waitLinkGone(name: string): Promise<void> {
  const until = Date.now() + VETH_WAIT_MS;
  while (existsSync(`/sys/class/net/${name}`)) {
    if (Date.now() > until) { await deleteLink(name); return; }
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * Idempotent, and needs nothing but the record: every step tolerates what is already gone.
 *
 * Order: the namespace goes first (with portmap's DEL alongside), then bridge DEL. The kernel drops a
 * veth pair along with its namespace, so bridge DEL only has to release the lease (it tolerates the
 * missing netns), which is ~10 ms cheaper than the plugin deleting the veth itself.
 */
export async function teardownSandbox(ctx: SandboxContext, id: string, rec: SandboxRecord | undefined): Promise<void> {
  if (!rec) {
    await deleteNetns(netnsName(id));
    return;
  }
  const errors: unknown[] = [];
  const keep = (p: Promise<unknown>) => p.catch((err) => { errors.push(err); });
  if (rec.mode !== 'host') {
    const known = rec.attachments.filter((a) => a.hostVeth);
    // An ADD that failed or never finished may have left a veth we cannot name: the plugin removes
    // it from inside the namespace, so this DEL runs while the namespace still exists.
    for (const a of rec.attachments.filter((x) => !x.hostVeth).reverse()) await keep(delList(a.list, runtime(ctx, rec, a), a.result));
    await Promise.all([
      keep(deleteNetns(netnsName(id))),
      ...known.map((a) => keep(delList(a.list, runtime(ctx, rec, a), a.result, a.list.plugins.slice(1)))),
    ]);
    for (const a of [...known].reverse()) await keep(delList(a.list, runtime(ctx, rec, a), a.result, a.list.plugins.slice(0, 1)));
    await Promise.all(known.map((a) => keep(waitLinkGone(a.hostVeth!))));
  }
  if (errors.length > 0) {
    // Keep the record so that a later teardown (or restore) can try again.
    throw new PierError(`tearing down the network of ${id.slice(0, 12)}: ${messageOf(errors[0])}`);
  }
  ctx.store.deleteSandbox(id);
  ctx.records.delete(id);
  ctx.ports.release(id);
}
