/** pier's container networking: networks, sandboxes (netns + CNI), published ports, name resolution. */
export { NetworkManager, type NetworkManagerOptions } from './manager.ts';
export type { Attachment, NetworkConfig, PortMapping, Sandbox, SandboxRequest } from './types.ts';
