/**
 * The CNI plugin list for one attachment: bridge + host-local, and portmap on the attachment that
 * publishes the container's ports. The list is persisted with the attachment: DEL must see the same
 * configuration ADD saw, even if pier's defaults change in between.
 */
import type { CniList, CniPlugin } from './cni.ts';
import type { NetworkConfig, PortMapping } from './types.ts';

export const CNI_VERSION = '1.0.0';

export function attachmentList(net: NetworkConfig, opts: { ipamDataDir: string; defaultRoute: boolean; ports: PortMapping[] }): { list: CniList; runtimeConfig?: Record<string, unknown> } {
  const bridge: CniPlugin = {
    type: 'bridge',
    bridge: net.bridge,
    isGateway: true,      // the gateway address lives on the bridge (pier already put it there)
    ipMasq: false,        // one masquerade rule per network instead (firewall.ts)
    hairpinMode: true,    // a container may reach its own published port through the host
    ipam: {
      type: 'host-local',
      dataDir: opts.ipamDataDir,
      ranges: [[{ subnet: net.subnet, gateway: net.gateway }]],
      // One default route per container: only via the network that carries its outbound traffic.
      routes: opts.defaultRoute ? [{ dst: '0.0.0.0/0' }] : [],
    },
  };
  const plugins = [bridge];
  if (opts.ports.length === 0) return { list: { cniVersion: CNI_VERSION, name: net.name, plugins } };
  // snat: rewrite the source of hairpin and 127.0.0.1 traffic, so localhost:hostPort works on the host.
  plugins.push({ type: 'portmap', capabilities: { portMappings: true }, snat: true });
  const portMappings = opts.ports.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, hostIP: p.hostIp ?? '' }));
  return { list: { cniVersion: CNI_VERSION, name: net.name, plugins }, runtimeConfig: { portMappings } };
}
