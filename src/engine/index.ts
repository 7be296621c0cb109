/**
 * Layer 4's public API: the engine daemon (Engine, startDaemon), its client, and the API types.
 * The CLI and later layers import from here.
 */
export { Engine, startDaemon, createApiServer, API_VERSION, parseRestartPolicy, parseVolumeSpec, type Daemon } from './daemon/index.ts';
export { EngineClient, type ClientOptions } from './client/index.ts';
export { enginePaths, type EnginePaths } from './paths.ts';
export { ShimClient } from './shim/index.ts';
export type * from './api.ts';
