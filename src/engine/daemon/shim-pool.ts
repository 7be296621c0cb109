/**
 * The daemon's shim hosts: a few long-lived pier-shim processes (one per core by default) that
 * monitor containers, taken round-robin. A container start then costs no Node start-up, and 100
 * containers cost a few processes, not 100. A host that died is replaced; if no host can be had,
 * a container gets a shim process of its own (spawnShim). Hosts outlive pierd with their containers
 * and exit after the last one (shim/README.md).
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../common/log.ts';
import { messageOf } from '../../common/errors.ts';
import { ShimHost, spawnShim, startShimHost, type ShimConfig, type StartResult } from '../shim/index.ts';

export class ShimPool {
  private hosts: (Promise<ShimHost> | undefined)[];
  private next = 0;
  private closed = false;
  private readonly dir: string;
  private readonly log: Logger;

  constructor(dir: string, log: Logger, size: number) {
    this.dir = dir;
    this.log = log;
    this.hosts = Array.from({ length: Math.max(0, size) }, () => undefined);
  }

  /** Start the hosts ahead of the first container. */
  fill(): void {
    for (let i = 0; i < this.hosts.length; i++) void this.host(i)?.catch(() => undefined);
  }

  private host(i: number): Promise<ShimHost> | undefined {
    if (this.closed) return undefined;
    const cur = this.hosts[i];
    if (cur) return cur;
    const socket = join(this.dir, `host-${randomBytes(6).toString('hex')}.sock`);
    const p = startShimHost(socket);
    this.hosts[i] = p;
    p.catch((err: unknown) => {
      this.log.warn(`shim host: ${messageOf(err)}`);
      if (this.hosts[i] === p) this.hosts[i] = undefined;
    });
    return p;
  }

  async start(cfg: ShimConfig): Promise<StartResult> {
    if (this.hosts.length === 0) return spawnShim(cfg);
    const i = this.next++ % this.hosts.length;
    let host: ShimHost | undefined;
    try {
      host = await this.host(i);
      if (host && !host.alive) {
        this.hosts[i] = undefined;
        host = await this.host(i);
      }
    } catch {
      host = undefined;
    }
    if (!host) return spawnShim(cfg);
    return host.start(cfg);
  }

  close(): void {
    this.closed = true;
    for (const p of this.hosts.splice(0)) void p?.then((h) => h.close(), () => undefined);
  }
}
