/**
 * Layer 4's public API: the engine daemon (startDaemon; Engine for in-process use), its client, and
 * the API types. The daemon and the shim client are loaded only when asked for: CLI commands that
 * only talk to pierd then start without evaluating the image, network and runtime layers.
 */
import type { Daemon } from './daemon/index.ts';
import type { EnginePaths } from './paths.ts';
import type { Logger } from '../common/log.ts';

export { EngineClient, EngineApiError, type ClientOptions, type BuildSandboxLease } from './client/index.ts';
export { enginePaths, type EnginePaths } from './paths.ts';
export { parseRestartPolicy } from './daemon/restart.ts';
export type { Daemon, Engine } from './daemon/index.ts';
export type { BuildSandboxInfo } from './daemon/build-sandbox.ts';
export type { ShimClient } from './shim/index.ts';
// the frames of hijacked exec/attach streams (the shim protocol's, relayed by pierd; tiny, no runtime)
export { FRAME, FrameReader, encodeFrame, jsonFrame } from './shim/protocol.ts';
export type * from './api.ts';

export async function startDaemon(opts: { paths?: EnginePaths; log?: Logger } = {}): Promise<Daemon> {
  return (await import('./daemon/index.ts')).startDaemon(opts);
}

/** A client of a container's shim socket (stdin for `run -i`, resize). */
export async function connectShim(socket: string): Promise<import('./shim/index.ts').ShimClient> {
  return (await import('./shim/index.ts')).ShimClient.connect(socket);
}
