/**
 * Network sandboxes for `pier build`. The build runs in the CLI process, but networks (bridges,
 * CNI, leases, iptables) are pierd's, so a build asks pierd for a network namespace on the default
 * network for its RUN steps: egress through the network's masquerade rule, and neither the host's
 * loopback nor its addresses inside (BuildKit and buildah give RUN the same by default).
 *
 * A sandbox lives exactly as long as the HTTP request that asked for it: the answer's first NDJSON
 * line describes it and the answer then stays open. The build releases it with
 * `DELETE /build/sandboxes/<id>`, which returns once it is torn down; if the connection closes
 * first — the build failed, or was killed with SIGKILL — pierd tears it down then. Sandboxes a
 * previous pierd lent (their connections died with it) are torn down when pierd starts.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { PierError, messageOf } from '../../common/errors.ts';
import { longLived } from '../../common/http-server.ts';
import type { Engine } from './engine.ts';
import { ApiError } from './errors.ts';

/** The record name of a build's sandbox ("build:<id12>"; container names cannot hold a ":"). */
const NAME_PREFIX = 'build:';
/** RFC 1123 label, as a container hostname. */
const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
const ID_RE = /^[0-9a-f]{64}$/;

/** What the first line of the answer carries. */
export interface BuildSandboxInfo {
  id: string;
  netnsPath: string;
  hosts: string;
  resolvConf: string;
  ip: string;
  gateway: string;
}

interface Lent {
  res: ServerResponse;
  /** a DELETE asked for it: the build is done with it */
  released: boolean;
  /** tears down once, however many times it is asked */
  teardown: () => Promise<void>;
}

/**
 * SIGKILL every process in a network namespace (found as `ip netns pids` finds them: /proc/<pid>/ns/net
 * is the same nsfs inode as the namespace's bind mount).
 */
function killIn(netnsPath: string, log: (msg: string) => void): void {
  let ns;
  try { ns = statSync(netnsPath); } catch { return; }
  const killed: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = statSync(`/proc/${d}/ns/net`);
      if (st.ino !== ns.ino || st.dev !== ns.dev) continue;
      process.kill(Number(d), 'SIGKILL');
      killed.push(Number(d));
    } catch { /* gone meanwhile, or not ours to read */ }
  }
  if (killed.length) log(`killed what its build left running: pid ${killed.join(', ')}`);
}

export class BuildSandboxes {
  private readonly engine: Engine;
  private readonly lent = new Map<string, Lent>();

  constructor(engine: Engine) {
    this.engine = engine;
    // Made before the daemon takes requests: every build sandbox on disk now belongs to a dead
    // connection of an earlier pierd. Teardown is locked per sandbox and idempotent, so it may run
    // alongside the network manager's own restore.
    for (const s of engine.networks.store.loadSandboxes()) {
      if (typeof s.name !== 'string' || !s.name.startsWith(NAME_PREFIX)) continue;
      void engine.networks.teardown(s.containerId).catch((err) => engine.log.warn(`build sandbox ${s.containerId.slice(0, 12)} left by an earlier pierd: ${messageOf(err)}`));
    }
  }

  /** POST /build/sandboxes?hostname=NAME: set one up, answer its first line, keep the answer open. */
  async open(res: ServerResponse, q: URLSearchParams): Promise<void> {
    const hostname = q.get('hostname') ?? 'pier-build';
    if (!HOSTNAME_RE.test(hostname)) throw new PierError(`build sandbox: invalid hostname ${JSON.stringify(hostname.slice(0, 100))}`);
    // 'close' comes when the answer ends or the connection goes, whichever is first; it may come
    // while the setup below is still running, and then the teardown waits for the setup.
    const closed = new Promise<void>((r) => res.once('close', () => r()));
    const id = randomBytes(32).toString('hex');
    const sb = await this.engine.networks.setup({ containerId: id, name: `${NAME_PREFIX}${id.slice(0, 12)}`, hostname, mode: 'bridge', networks: [], ports: [] });
    let done: Promise<void> | undefined;
    const lent: Lent = {
      res,
      released: false,
      teardown: () => (done ??= this.engine.networks.teardown(id).finally(() => this.lent.delete(id))),
    };
    this.lent.set(id, lent);
    void closed.then(() => {
      // Closed without a release: the build died (kill -9 included), and a RUN of it may still be
      // running in the namespace — its runtime helper outlives the CLI. It goes with its sandbox.
      if (!lent.released && sb.netnsPath) killIn(sb.netnsPath, (m) => this.engine.log.info(`build sandbox ${id.slice(0, 12)}: ${m}`));
      return lent.teardown();
    }).catch((err) => this.engine.log.warn(`build sandbox ${id.slice(0, 12)}: ${messageOf(err)}`));
    if (res.destroyed) return;
    // Quiet on purpose for as long as the build runs: no idle timeout.
    longLived(res);
    const a = sb.attachments[0];
    const info: BuildSandboxInfo = { id, netnsPath: sb.netnsPath!, hosts: sb.hosts, resolvConf: sb.resolvConf, ip: a?.ip ?? '', gateway: a?.gateway ?? '' };
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(`${JSON.stringify({ sandbox: info })}\n`);
  }

  /** DELETE /build/sandboxes/<id>: tear it down, then end the answer that lent it. */
  async release(id: string): Promise<void> {
    const lent = ID_RE.test(id) ? this.lent.get(id) : undefined;
    if (!lent) throw new ApiError(404, `no build sandbox ${JSON.stringify(id.slice(0, 100))}`);
    lent.released = true;
    await lent.teardown();
    if (!lent.res.writableEnded) lent.res.end(`${JSON.stringify({ released: true })}\n`);
  }
}
