/**
 * The engine API's types: what the CLI sends pierd and what pierd answers (docs/engine-api.md).
 * Shared by daemon/ and client/ so both sides agree at compile time.
 */
import type { PortMapping } from './network/index.ts';

export type { PortMapping };

export type RestartName = 'no' | 'on-failure' | 'always' | 'unless-stopped';
export interface RestartPolicy { name: RestartName; maxRetries?: number }

/** POST /v1/containers — what `pier create`/`pier run` ask for. */
export interface CreateRequest {
  image: string;
  name?: string;
  /** Replaces the image's Cmd. */
  cmd?: string[];
  /** Replaces the image's Entrypoint ([""] or [] clears it, as `--entrypoint ""`). */
  entrypoint?: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  tty?: boolean;
  /** Keep stdin open for an attaching client (`-i`). */
  stdin?: boolean;
  /** bridge (default), none, host, or a user network name. */
  network?: string;
  networkAliases?: string[];
  ports?: PortMapping[];
  /** `-v` specs: NAME:/dst[:ro], /host:/dst[:ro], or /dst for an anonymous volume. */
  volumes?: string[];
  /** Bytes. */
  memory?: number;
  cpus?: number;
  pidsLimit?: number;
  restart?: RestartPolicy;
  readOnly?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  init?: boolean;
  autoRemove?: boolean;
  /** A runc-compatible binary; absent → pier's runtime in-process. */
  runtime?: string;
  labels?: Record<string, string>;
  log?: { maxSize?: number; maxFiles?: number };
  extraHosts?: string[];
  stopSignal?: string;
  stopTimeout?: number;
}

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'removing' | 'dead';

export interface MountRecord {
  type: 'volume' | 'bind';
  /** Volume name or host path. */
  source: string;
  destination: string;
  readOnly: boolean;
  /** Anonymous volumes are removed with the container when it is removed with -v or --rm. */
  anonymous?: boolean;
}

export interface ContainerState {
  status: ContainerStatus;
  pid: number;
  shimPid: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  oomKilled: boolean;
  error?: string;
  restartCount: number;
  /** Stopped by a user (stop/kill): `unless-stopped` and on-failure do not restart it. */
  manuallyStopped: boolean;
}

export interface ContainerInfo {
  id: string;
  name: string;
  created: string;
  image: string;
  imageId: string;
  command: string[];
  config: CreateRequest;
  state: ContainerState;
  mounts: MountRecord[];
  network: { mode: 'bridge' | 'none' | 'host'; networks: string[]; ips: Record<string, string>; ports: PortMapping[] };
  rootfs: string;
  logPath: string;
  shimSocket: string;
  runtimeRoot: string;
}

export interface ExitInfo { exitCode: number; oomKilled: boolean; signal?: string; error?: string }

export interface VolumeInfo { name: string; driver: 'local'; mountpoint: string; created: string; labels: Record<string, string>; anonymous: boolean }

export interface StatsInfo {
  id: string;
  name: string;
  cpuPercent: number;
  cpuNanos: number;
  memoryUsage: number;
  memoryLimit: number;
  pids: number;
  netRx: number;
  netTx: number;
}

export interface LogEntry { stream: 'stdout' | 'stderr'; log: string; time: string }

/** Lines of a streamed response (logs, run-attach): NDJSON, one of these per line. */
export type StreamLine = { entry: LogEntry } | { exit: ExitInfo } | { error: string } | { progress: string };
