/**
 * NetworkManager: pier's networks (configs on disk, a Linux bridge each) and per-container sandboxes
 * (a named netns joined to networks through CNI). See README.md for the design.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { PierError, messageOf } from '../../common/errors.ts';
import { deleteBridgeSync, enableForwarding, ensureBridge, linkExists, validIfName } from './bridge.ts';
import { DnsServer } from './dns/server.ts';
import { installRules, removeRulesSync } from './firewall.ts';
import { cidrString, hostRoutes, overlaps, parseGateway, parseSubnet, pickSubnet, formatIpv4 } from './ipam/subnets.ts';
import { normalizePorts, PortTable } from './ports.ts';
import { lookupAddress, lookupName } from './resolver.ts';
import { setupSandbox, teardownSandbox, publicView, type SandboxContext } from './sandbox.ts';
import { Store } from './store.ts';
import type { NetworkConfig, PortMapping, Sandbox, SandboxRecord, SandboxRequest } from './types.ts';
import { KeyedMutex } from '../../common/keyed-mutex.ts';

export interface NetworkManagerOptions {
  root: string;            // $PIER_ROOT: state lives under <root>/networks
  run: string;             // $PIER_RUN (nothing of this module lives there today)
  log?: (msg: string) => void;
  defaultName?: string;    // 'bridge'
  defaultBridge?: string;  // 'pier0'
  defaultSubnet?: string;  // '10.87.0.0/16'
  cniPath?: string;        // plugin directories, colon-separated (pierd: $PIER_CNI_PATH); default Debian's and upstream's
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const PREDEFINED = ['none', 'host'];

export class NetworkManager {
  readonly store: Store;
  readonly runDir: string;
  private log: (msg: string) => void;
  private defaultName: string;
  private defaultBridge: string;
  private defaultSubnet: string;
  private cniPath: string;
  private nets = new Map<string, NetworkConfig>();          // by id
  private sandboxes = new Map<string, SandboxRecord>();     // by container id
  private dying = new Set<string>();                        // containers being torn down: no longer resolvable
  private ports = new PortTable();
  private ready = new Map<string, Promise<void>>();         // per network id: bridge, rules, DNS in place
  private readyDone = new WeakSet<Promise<void>>();         // those of them that have settled
  private locks = new KeyedMutex();                         // per container id
  private dns: DnsServer;

  constructor(opts: NetworkManagerOptions) {
    this.store = new Store(opts.root);
    this.runDir = opts.run;
    this.log = opts.log ?? (() => {});
    this.defaultName = opts.defaultName ?? 'bridge';
    this.defaultBridge = opts.defaultBridge ?? 'pier0';
    this.defaultSubnet = opts.defaultSubnet ?? '10.87.0.0/16';
    this.cniPath = opts.cniPath ?? '/usr/lib/cni:/opt/cni/bin';
    for (const n of this.store.loadNetworks()) this.nets.set(n.id, n);
    for (const s of this.store.loadSandboxes()) {
      this.sandboxes.set(s.containerId, s);
      this.ports.adopt(s.containerId, s.ports);
    }
    const live = () => [...this.sandboxes.values()].filter((s) => s.state === 'ready' && !this.dying.has(s.containerId));
    this.dns = new DnsServer({
      lookup: (q) => lookupName([...this.nets.values()], live(), q),
      reverse: (q) => lookupAddress([...this.nets.values()], live(), q),
      log: this.log,
    });
  }

  // ---- networks ---------------------------------------------------------------------------------

  /** The default network ("bridge" on pier0), made on first use; it has no name resolution, as in docker. */
  ensureDefault(): NetworkConfig {
    const subnet = parseSubnet(this.defaultSubnet);
    if (!validIfName(this.defaultBridge)) throw new PierError(`invalid bridge name "${this.defaultBridge}"`);
    const want = { bridge: this.defaultBridge, subnet: cidrString(subnet), gateway: formatIpv4(subnet.base + 1) };
    let n = this.byName(this.defaultName);
    // Daemon options may move the default network; follow them while nothing is attached.
    if (n && (n.bridge !== want.bridge || n.subnet !== want.subnet) && this.endpoints(n.id).length === 0) {
      this.dropKernelState(n);
      n = { ...n, ...want };
      this.store.saveNetwork(n);
      this.nets.set(n.id, n);
    }
    if (n) return { ...n };
    n = { id: randomBytes(32).toString('hex'), name: this.defaultName, driver: 'bridge', ...want, internal: false, dns: false, labels: {}, created: new Date().toISOString() };
    this.store.saveNetwork(n);
    this.nets.set(n.id, n);
    return { ...n };
  }

  create(name: string, opts: { subnet?: string; gateway?: string; internal?: boolean; labels?: Record<string, string> } = {}): NetworkConfig {
    if (typeof name !== 'string' || !NAME_RE.test(name)) throw new PierError(`invalid network name "${name}": use letters, digits, "_", "." and "-", starting with a letter or digit`);
    if (name === this.defaultName || PREDEFINED.includes(name) || this.byName(name)) throw new PierError(`network "${name}" already exists`);
    this.ensureDefault();
    let subnet;
    if (opts.subnet) {
      subnet = parseSubnet(opts.subnet);
      for (const n of this.nets.values()) {
        if (overlaps(parseSubnet(n.subnet), subnet)) throw new PierError(`subnet ${opts.subnet} overlaps network "${n.name}" (${n.subnet})`);
      }
    } else {
      if (opts.gateway) throw new PierError('a gateway needs a subnet: pass --subnet too');
      subnet = pickSubnet([...[...this.nets.values()].map((n) => parseSubnet(n.subnet)), ...hostRoutes()]);
    }
    const gateway = parseGateway(opts.gateway, subnet);
    const labels = opts.labels ?? {};
    for (const [k, v] of Object.entries(labels)) {
      if (typeof v !== 'string' || k === '') throw new PierError(`invalid label "${k}"`);
    }
    const id = randomBytes(32).toString('hex');
    const n: NetworkConfig = {
      id, name, driver: 'bridge', bridge: `br-${id.slice(0, 12)}`, subnet: cidrString(subnet), gateway: formatIpv4(gateway),
      internal: opts.internal ?? false, dns: true, labels: { ...labels }, created: new Date().toISOString(),
    };
    this.store.saveNetwork(n);
    this.nets.set(id, n);
    this.log(`network ${name} created: ${n.subnet} on ${n.bridge}`);
    return { ...n };
  }

  list(): NetworkConfig[] {
    return [...this.nets.values()]
      .sort((a, b) => (a.name === this.defaultName ? -1 : b.name === this.defaultName ? 1 : a.name.localeCompare(b.name)))
      .map((n) => ({ ...n, labels: { ...n.labels } }));
  }

  inspect(ref: string): NetworkConfig & { containers: { containerId: string; name: string; ip: string }[] } {
    const n = this.lookup(ref);
    return { ...n, labels: { ...n.labels }, containers: this.endpoints(n.id) };
  }

  /** Refuses predefined networks and networks with endpoints; removes bridge, rules, leases, config. */
  remove(ref: string): void {
    if (ref === this.defaultName || PREDEFINED.includes(ref)) throw new PierError(`"${ref}" is a pre-defined network and cannot be removed`);
    const n = this.lookup(ref);
    if (n.name === this.defaultName) throw new PierError(`"${n.name}" is a pre-defined network and cannot be removed`);
    const eps = this.endpoints(n.id);
    if (eps.length > 0) throw new PierError(`network "${n.name}" has active endpoints: ${eps.map((e) => e.name || e.containerId.slice(0, 12)).join(', ')}`);
    this.dropKernelState(n);
    this.store.deleteNetwork(n);
    this.nets.delete(n.id);
    this.log(`network ${n.name} removed`);
  }

  checkPorts(ports: PortMapping[]): void {
    this.ports.check(normalizePorts(ports));
  }

  // ---- sandboxes --------------------------------------------------------------------------------

  async setup(req: SandboxRequest): Promise<Sandbox> {
    if (typeof req.containerId !== 'string' || !/^[0-9a-f]{64}$/.test(req.containerId)) throw new PierError(`invalid container id "${req.containerId}"`);
    return this.locked(req.containerId, async () => {
      if (this.sandboxes.has(req.containerId) || this.store.loadSandbox(req.containerId)) {
        // A leftover of a run that was never torn down (the daemon died): start clean.
        this.log(`sandbox of ${req.containerId.slice(0, 12)} still present: tearing it down first`);
        await this.teardownLocked(req.containerId);
      }
      return publicView(await setupSandbox(this.context(), req));
    });
  }

  async teardown(containerId: string): Promise<void> {
    if (typeof containerId !== 'string' || !/^[0-9a-f]{64}$/.test(containerId)) throw new PierError(`invalid container id "${containerId}"`);
    return this.locked(containerId, () => this.teardownLocked(containerId));
  }

  sandbox(containerId: string): Sandbox | undefined {
    const s = this.sandboxes.get(containerId) ?? this.store.loadSandbox(containerId);
    return s && s.state === 'ready' ? publicView(s) : undefined;
  }

  /**
   * After a daemon restart: undo sandboxes a crash left half-made or whose namespace is gone (host
   * reboot), and bring back bridges, rules and DNS servers for the networks that have live ones.
   */
  async restore(): Promise<void> {
    for (const s of this.store.loadSandboxes()) {
      if (!this.sandboxes.has(s.containerId)) { this.sandboxes.set(s.containerId, s); this.ports.adopt(s.containerId, s.ports); }
    }
    const stale = [...this.sandboxes.values()].filter((s) => s.state !== 'ready' || (s.netnsPath !== undefined && !existsSync(s.netnsPath)));
    await Promise.all(stale.map((s) => this.teardown(s.containerId).catch((err) => this.log(`cleaning up sandbox of ${s.containerId.slice(0, 12)}: ${messageOf(err)}`))));
    const used = new Set([...this.sandboxes.values()].flatMap((s) => s.attachments.map((a) => a.networkId)));
    await Promise.all([...used].map((id) => {
      const n = this.nets.get(id);
      return n ? this.ensureReady(n).catch((err) => this.log(`network ${n.name}: ${messageOf(err)}`)) : undefined;
    }));
  }

  /** Stop the DNS servers; sandboxes stay as they are. */
  async close(): Promise<void> {
    await this.dns.close();
    this.ready.clear();
  }

  // ---- internals --------------------------------------------------------------------------------

  private context(): SandboxContext {
    return {
      store: this.store,
      cniPath: this.cniPath,
      log: this.log,
      ports: this.ports,
      defaultName: this.defaultName,
      lookup: (ref) => this.lookup(ref),
      network: (id) => this.nets.get(id),
      ensureReady: (n) => this.ensureReady(n),
      records: this.sandboxes,
    };
  }

  private async teardownLocked(containerId: string): Promise<void> {
    const rec = this.sandboxes.get(containerId) ?? this.store.loadSandbox(containerId);
    this.dying.add(containerId);
    try {
      await teardownSandbox(this.context(), containerId, rec);
    } finally {
      this.dying.delete(containerId);
    }
  }

  /**
   * Bridge with the gateway address, masquerade rule and DNS server, once per network per process
   * (concurrent setups share the one promise), again if the bridge has vanished since.
   */
  private ensureReady(n: NetworkConfig): Promise<void> {
    const have = this.ready.get(n.id);
    if (have && (!this.readyDone.has(have) || linkExists(n.bridge))) return have;
    const p = (async () => {
      await ensureBridge(n.bridge, `${n.gateway}/${n.subnet.split('/')[1]}`);
      if (!n.internal) enableForwarding();
      await installRules(n);
      if (n.dns) {
        await this.dns.unlisten(n.gateway);
        await this.dns.listen(n.gateway).catch((err) => this.log(`network ${n.name}: no name resolution: DNS server cannot bind ${n.gateway}:53: ${messageOf(err)}`));
      }
    })();
    this.ready.set(n.id, p);
    p.then(() => { this.readyDone.add(p); }, () => { if (this.ready.get(n.id) === p) this.ready.delete(n.id); });
    return p;
  }

  /** Bridge, iptables rules and DNS server of a network (not its config or leases). */
  private dropKernelState(n: NetworkConfig): void {
    this.ready.delete(n.id);
    void this.dns.unlisten(n.gateway);
    removeRulesSync(n);
    deleteBridgeSync(n.bridge);
  }

  private byName(name: string): NetworkConfig | undefined {
    for (const n of this.nets.values()) if (n.name === name) return n;
    return undefined;
  }

  /** By exact name, exact id, then unique id prefix. */
  private lookup(ref: string): NetworkConfig {
    if (typeof ref !== 'string' || ref === '') throw new PierError('network name or id missing');
    if (ref === this.defaultName) return this.byName(ref) ?? this.ensureDefault();
    const byName = this.byName(ref);
    if (byName) return byName;
    const exact = this.nets.get(ref);
    if (exact) return exact;
    const matches = /^[0-9a-f]+$/.test(ref) ? [...this.nets.values()].filter((n) => n.id.startsWith(ref)) : [];
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) throw new PierError(`network "${ref}" is ambiguous: ${matches.length} networks match`);
    throw new PierError(`network "${ref}" not found`);
  }

  private endpoints(networkId: string): { containerId: string; name: string; ip: string }[] {
    const out = [];
    for (const s of this.sandboxes.values()) {
      for (const a of s.attachments) if (a.networkId === networkId) out.push({ containerId: s.containerId, name: s.name, ip: a.ip });
    }
    return out;
  }

  /** One operation at a time per container. */
  private locked<T>(containerId: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(containerId, fn);
  }
}
