/**
 * Names on user networks also go into every member's /etc/hosts (rewritten in place, so the bind
 * mount sees it): statically linked programs such as busybox's resolve through files only, not
 * through the network's DNS server.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { messageOf } from '../../../common/errors.ts';
import { hasProcess } from '../state.ts';
import type { ContainerContext } from './context.ts';

export function refreshHosts(ctx: ContainerContext, networks: string[]): void {
  for (const net of networks) {
    let dns = false;
    try { dns = ctx.host.networks.inspect(net).dns; } catch { continue; }
    if (!dns) continue;
    const members = ctx.records.scan().filter((c) => hasProcess(c.state.status) && c.network.ips[net]);
    const lines = members.map((c) => `${c.network.ips[net]}\t${[c.name, c.id.slice(0, 12), ...(c.config.networkAliases ?? [])].join(' ')}`);
    for (const c of members) {
      const dir = ctx.records.dirOf(c.id);
      try {
        const base = readFileSync(join(dir, 'hosts.base'), 'utf8');
        writeFileSync(join(dir, 'hosts'), `${base}${base.endsWith('\n') ? '' : '\n'}# containers on network ${net}\n${lines.join('\n')}\n`);
      } catch (err) {
        ctx.log.warn(`hosts of ${c.name}: ${messageOf(err)}`);
      }
    }
  }
}
