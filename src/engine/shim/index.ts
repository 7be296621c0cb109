/**
 * The per-container monitor (like conmon / containerd-shim): pierd's side of it. The process itself
 * is main.ts, bundled as dist/pier-shim.cjs; nothing here loads the runtime library.
 */
export type { ShimConfig, ExitStatus, StartResult } from './types.ts';
export { spawnShim, startShimHost, ShimHost, shimScript, type SpawnOptions } from './spawn.ts';
export { ShimClient, readExit, pumpStdin, type AttachOptions, type ShimStatus, type ShimStream, type ExecOptions } from './client.ts';
export { JsonLog, readLogs, rotatedFiles, formatTime, parseTime, type LogEntry, type LogStream, type ReadLogsOptions, type JsonLogOptions } from './jsonlog.ts';
export { FRAME, FrameReader, PROTOCOL_VERSION, encodeFrame, jsonFrame, checkExecSpec, execFailureCode, type ExecSpec, type ExecExit } from './protocol.ts';
