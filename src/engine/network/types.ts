/** The module's public shapes (see README.md) and the records it persists. */
import type { CniList, CniResult } from './cni.ts';

export interface NetworkConfig {
  id: string;                 // 64 hex
  name: string;
  driver: 'bridge';
  bridge: string;             // Linux interface name, at most 15 bytes
  subnet: string;             // CIDR
  gateway: string;
  internal: boolean;
  dns: boolean;               // name resolution: true for user networks, false for the default
  labels: Record<string, string>;
  created: string;            // ISO time
}

export interface PortMapping { hostIp?: string; hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }

export interface Attachment {
  network: string;
  networkId: string;
  ifname: string;
  ip: string;
  prefixLength: number;
  gateway: string;
  mac: string;
  aliases: string[];
}

export interface SandboxRequest {
  containerId: string;        // 64 hex
  name: string;               // container name
  hostname: string;
  mode: 'bridge' | 'none' | 'host';
  networks: { name: string; aliases?: string[] }[];  // mode bridge; empty means the default network
  ports: PortMapping[];
  extraHosts?: string[];      // "host:ip"
}

export interface Sandbox {
  containerId: string;
  mode: 'bridge' | 'none' | 'host';
  netnsPath?: string;         // absent for host
  attachments: Attachment[];
  ports: PortMapping[];       // as published (hostPort 0 replaced by the port chosen)
  hosts: string;              // /etc/hosts content
  resolvConf: string;         // /etc/resolv.conf content
}

/** One attachment as persisted: what DEL needs (the exact list and result of ADD) besides the facts. */
export interface AttachmentRecord extends Attachment {
  dns: boolean;
  list: CniList;
  runtimeConfig?: Record<string, unknown>;
  result?: CniResult;
  hostVeth?: string;
}

/**
 * A sandbox as persisted. It is written with state "creating" before the first kernel object is made,
 * so a process killed in the middle of setup leaves enough for teardown to undo it.
 */
export interface SandboxRecord {
  containerId: string;
  name: string;
  hostname: string;
  mode: 'bridge' | 'none' | 'host';
  state: 'creating' | 'ready';
  netnsPath?: string;
  attachments: AttachmentRecord[];
  ports: PortMapping[];
  hosts: string;
  resolvConf: string;
  created: string;
}
