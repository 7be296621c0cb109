/**
 * The engine API's types: what the CLI sends pierd and what pierd answers (docs/engine-api.md).
 * Shared by daemon/ and client/ so both sides agree at compile time.
 *
 * What a client sends (the create, network and volume bodies) is a TypeBox schema first, and its
 * TypeScript type is derived from it (Static<>), so the check pierd runs and the type the CLI
 * compiles against cannot drift apart. pierd checks every body against these before it acts
 * (server.ts); a value that fits the schema but not the daemon's state (an unknown runtime or
 * network, a taken port) is Engine.create's to refuse. Only the daemon evaluates this module: the
 * client imports its types only, so TypeBox stays out of the small CLI bundle.
 */
import { isIP, isIPv4 } from 'node:net';
import { FormatRegistry, Type, type Static } from '@sinclair/typebox';
import type { PortMapping as NetworkPortMapping } from './network/index.ts';

// ---- formats (TypeBox's registry is global; the names are prefixed so no other schema clashes) --

/** A string the kernel can take as one argument, variable or path: no NUL byte. */
const NO_NUL = /^[^\0]*$/;
/** Container names, network aliases, extra-host names: one line, no spaces (they go into /etc/hosts). */
const HOST_NAME = /^[A-Za-z0-9_.-]+$/;

FormatRegistry.Set('pier-ipv4', (v) => isIPv4(v));
// `host:ip` as network/etc.ts writes it into /etc/hosts: IPv4, IPv6 (bare or in brackets), or the
// word host-gateway; split at the first colon, as docker does.
FormatRegistry.Set('pier-extra-host', (v) => {
  const at = v.indexOf(':');
  if (at <= 0 || !HOST_NAME.test(v.slice(0, at))) return false;
  let ip = v.slice(at + 1);
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  return ip === 'host-gateway' || isIP(ip) !== 0;
});

/** A namespace mode: private, or container:NAME to join another container's. */
const nsMode = (ns: string) => Type.String({ pattern: '^(private|container:[^\\0]+)$', errorMessage: `expected private or container:NAME for ${ns}` });

const text = (what = 'a string without NUL bytes') => Type.String({ pattern: NO_NUL.source, errorMessage: `expected ${what}` });
const strings = () => Type.Array(text());

// ---- limits, and why each number ----------------------------------------------------------------

/** docker's minimum memory limit (6 MB; `pier run -m` refuses less too). */
export const MIN_MEMORY = 6 * 1024 * 1024;
/**
 * The smallest log file: four full-size entries (the shim cuts a line at 16 KiB, docker's size,
 * shim/jsonlog.ts MAX_LINE). Smaller, and nearly every entry is a rotation of its own.
 */
export const MIN_LOG_SIZE = 64 * 1024;
/** Each rotation renames every older file: a bound keeps that at most a thousand renames. */
export const MAX_LOG_FILES = 1000;
/** Seconds that still fit a Node timer (2^31-1 ms); a longer one would fire at once. */
export const MAX_TIMEOUT_S = 2_147_483;

// ---- bodies ---------------------------------------------------------------------------------------

export const PortMappingSchema = Type.Object({
  hostIp: Type.Optional(Type.String({ format: 'pier-ipv4', errorMessage: 'expected an IPv4 address' })),
  /** 0: the daemon picks a free port. */
  hostPort: Type.Integer({ minimum: 0, maximum: 65535, errorMessage: 'expected a port number 0-65535' }),
  containerPort: Type.Integer({ minimum: 1, maximum: 65535, errorMessage: 'expected a port number 1-65535' }),
  protocol: Type.Union([Type.Literal('tcp'), Type.Literal('udp')], { errorMessage: 'expected tcp or udp' }),
}, { additionalProperties: false });
export type PortMapping = Static<typeof PortMappingSchema>;

export type RestartName = 'no' | 'on-failure' | 'always' | 'unless-stopped';
export const RestartPolicySchema = Type.Object({
  name: Type.Union([Type.Literal('no'), Type.Literal('on-failure'), Type.Literal('always'), Type.Literal('unless-stopped')], { errorMessage: 'expected no, on-failure, always or unless-stopped' }),
  maxRetries: Type.Optional(Type.Integer({ minimum: 0, errorMessage: 'expected an integer >= 0' })),
}, { additionalProperties: false });
export type RestartPolicy = Static<typeof RestartPolicySchema>;

/**
 * A health check as docker's configs hold it (image config `Healthcheck`, create's `healthcheck`):
 * Test is [] (the image's), ["NONE"], ["CMD", arg…] or ["CMD-SHELL", command]; durations in
 * nanoseconds, 0 for the default (interval 30s, timeout 30s, start period 0, start interval 5s,
 * retries 3).
 */
const nanos = (what: string) => Type.Optional(Type.Integer({ minimum: 0, errorMessage: `expected ${what} in nanoseconds (0: the default)` }));
export const HealthConfigSchema = Type.Object({
  Test: Type.Optional(Type.Array(text())),
  Interval: nanos('an interval'),
  Timeout: nanos('a timeout'),
  StartPeriod: nanos('a start period'),
  StartInterval: nanos('a start interval'),
  Retries: Type.Optional(Type.Integer({ minimum: 0, errorMessage: 'expected a retry count >= 0' })),
}, { additionalProperties: false });
export type HealthConfig = Static<typeof HealthConfigSchema>;

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';
export interface HealthLogEntry { Start: string; End: string; ExitCode: number; Output: string }
/** docker's State.Health: kept in the record's state.health while a check runs (and after, as last seen). */
export interface HealthState { Status: HealthStatus; FailingStreak: number; Log: HealthLogEntry[] }

/** POST /v1/containers — what `pier create`/`pier run` ask for. */
export const CreateRequestSchema = Type.Object({
  image: Type.String({ minLength: 1, pattern: NO_NUL.source, errorMessage: 'expected an image reference' }),
  name: Type.Optional(Type.String()),
  /** Replaces the image's Cmd. */
  cmd: Type.Optional(strings()),
  /** Replaces the image's Entrypoint ([""] or [] clears it, as `--entrypoint ""`). */
  entrypoint: Type.Optional(strings()),
  env: Type.Optional(Type.Array(Type.String({ pattern: '^[^=\\0][^\\0]*$', errorMessage: 'expected KEY=VALUE without NUL bytes' }))),
  workdir: Type.Optional(Type.String({ pattern: '^/[^\\0]*$', errorMessage: 'expected an absolute path' })),
  user: Type.Optional(text()),
  hostname: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$', maxLength: 64, errorMessage: 'expected a host name of letters, digits, "." and "-" (at most 64)' })),
  tty: Type.Optional(Type.Boolean()),
  /** Keep stdin open for an attaching client (`-i`). */
  stdin: Type.Optional(Type.Boolean()),
  /** bridge (default), none, host, or a user network name. */
  network: Type.Optional(Type.String({ minLength: 1, pattern: NO_NUL.source, errorMessage: 'expected a network name' })),
  networkAliases: Type.Optional(Type.Array(Type.String({ pattern: HOST_NAME.source, maxLength: 253, errorMessage: 'expected a name of letters, digits, "_", "." and "-"' }))),
  ports: Type.Optional(Type.Array(PortMappingSchema)),
  /** `-v` specs: NAME:/dst[:ro], /host:/dst[:ro], or /dst for an anonymous volume. */
  volumes: Type.Optional(strings()),
  /** Bytes. */
  memory: Type.Optional(Type.Integer({ minimum: MIN_MEMORY, errorMessage: `expected a byte count of at least ${MIN_MEMORY} (6m)` })),
  cpus: Type.Optional(Type.Number({ minimum: 0.01, errorMessage: 'expected a number of CPUs, at least 0.01' })),
  pidsLimit: Type.Optional(Type.Integer({ minimum: 1, errorMessage: 'expected an integer >= 1' })),
  restart: Type.Optional(RestartPolicySchema),
  readOnly: Type.Optional(Type.Boolean()),
  capAdd: Type.Optional(strings()),
  capDrop: Type.Optional(strings()),
  init: Type.Optional(Type.Boolean()),
  autoRemove: Type.Optional(Type.Boolean()),
  /** A runtime by name: pier (the default, pier's runtime in-process), runc when pierd found one, or one from daemon.json. */
  runtime: Type.Optional(Type.String({ minLength: 1, pattern: NO_NUL.source, errorMessage: 'expected a runtime name' })),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  log: Type.Optional(Type.Object({
    maxSize: Type.Optional(Type.Integer({ minimum: MIN_LOG_SIZE, errorMessage: `expected a byte count of at least ${MIN_LOG_SIZE} (64k)` })),
    maxFiles: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LOG_FILES, errorMessage: `expected an integer 1-${MAX_LOG_FILES}` })),
  }, { additionalProperties: false })),
  extraHosts: Type.Optional(Type.Array(Type.String({ format: 'pier-extra-host', errorMessage: 'expected HOST:IP with an IPv4 or IPv6 address (or host-gateway)' }))),
  /** A signal name or number (checked against the runtime's table by Engine.create). */
  stopSignal: Type.Optional(Type.String({ minLength: 1, maxLength: 32, errorMessage: 'expected a signal name or number' })),
  stopTimeout: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TIMEOUT_S, errorMessage: `expected whole seconds 0-${MAX_TIMEOUT_S}` })),
  /** Over the image's HEALTHCHECK field by field (`--health-*`); Test ["NONE"]: `--no-healthcheck`. */
  healthcheck: Type.Optional(HealthConfigSchema),
  /** A pod (name or id) to join: its network, and the namespaces it shares (`--pod`). */
  pod: Type.Optional(Type.String({ minLength: 1, pattern: NO_NUL.source, errorMessage: 'expected a pod name or id' })),
  /** `container:NAME` joins that container's IPC / UTS / PID namespace; private (the default) makes one. */
  ipc: Type.Optional(nsMode('ipc')),
  uts: Type.Optional(nsMode('uts')),
  pid: Type.Optional(nsMode('pid')),
}, { additionalProperties: false });
export type CreateRequest = Static<typeof CreateRequestSchema>;

/** The namespaces a pod's containers share with its infra container (podman's --share). */
export const POD_SHARES = ['net', 'ipc', 'uts', 'pid'] as const;
export type PodShare = (typeof POD_SHARES)[number];

/** POST /v1/pods — what `pier pod create` asks for. */
export const PodCreateSchema = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, errorMessage: 'expected a pod name' })),
  hostname: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$', maxLength: 64, errorMessage: 'expected a host name of letters, digits, "." and "-" (at most 64)' })),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  ports: Type.Optional(Type.Array(PortMappingSchema)),
  /** bridge (default), none, host, or a user network name. */
  network: Type.Optional(Type.String({ minLength: 1, pattern: NO_NUL.source, errorMessage: 'expected a network name' })),
  share: Type.Optional(Type.Array(Type.Union(POD_SHARES.map((s) => Type.Literal(s))), { errorMessage: 'expected a list of net, ipc, uts, pid' })),
}, { additionalProperties: false });
export type PodCreateRequest = Static<typeof PodCreateSchema>;

export type PodStatus = 'created' | 'running' | 'stopped' | 'removing';

/** A pod as pierd keeps it (daemon/pods/store.ts): what it wants; its containers say what is. */
export interface PodRecord {
  id: string;
  revision: number;
  name: string;
  created: string;
  labels: Record<string, string>;
  hostname: string;
  share: PodShare[];
  network: string;
  ports: PortMapping[];
  infraId: string;
  /** The pod's cgroup parent: its containers' cgroups go under it (`/pier/pod-<id12>`). */
  cgroupParent: string;
  /** created: never started; running: started (its containers should run); stopped: stopped by a user. */
  status: PodStatus;
}

/** GET /v1/pods/:ref — the record with what its containers are doing (podman's pod states). */
export interface PodInfo extends PodRecord {
  state: 'Created' | 'Running' | 'Degraded' | 'Exited';
  containers: { id: string; name: string; status: ContainerStatus; infra: boolean }[];
}

/** POST /v1/networks (subnet, gateway and the name are the network layer's to judge). */
export const NetworkCreateSchema = Type.Object({
  name: Type.String({ minLength: 1, errorMessage: 'expected a network name' }),
  subnet: Type.Optional(Type.String({ pattern: NO_NUL.source, errorMessage: 'expected a subnet like 10.1.0.0/24' })),
  gateway: Type.Optional(Type.String({ format: 'pier-ipv4', errorMessage: 'expected an IPv4 address' })),
  internal: Type.Optional(Type.Boolean()),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
}, { additionalProperties: false });
export type NetworkCreateRequest = Static<typeof NetworkCreateSchema>;

/** POST /v1/volumes (no name: an anonymous volume). */
export const VolumeCreateSchema = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, errorMessage: 'expected a volume name' })),
  labels: Type.Optional(Type.Record(Type.String(), Type.String())),
}, { additionalProperties: false });
export type VolumeCreateRequest = Static<typeof VolumeCreateSchema>;

/**
 * POST /v1/containers/:ref/exec — docker's exec create body (the fields pier uses; DetachKeys,
 * Privileged and ConsoleSize at create are not taken).
 */
export const ExecCreateSchema = Type.Object({
  Cmd: Type.Array(text(), { minItems: 1, errorMessage: 'expected the command as a non-empty list of strings' }),
  Env: Type.Optional(Type.Array(Type.String({ pattern: '^[^=\\0]+=[^\\0]*$', errorMessage: 'expected KEY=VALUE without NUL bytes' }))),
  WorkingDir: Type.Optional(Type.String({ pattern: '^(/[^\\0]*)?$', errorMessage: 'expected an absolute path' })),
  /** USER[:GROUP], names from the container's /etc/passwd and /etc/group, or numbers. */
  User: Type.Optional(text()),
  Tty: Type.Optional(Type.Boolean()),
  AttachStdin: Type.Optional(Type.Boolean()),
  AttachStdout: Type.Optional(Type.Boolean()),
  AttachStderr: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type ExecCreateRequest = Static<typeof ExecCreateSchema>;

/** POST /v1/exec/:id/start — Detach, or a hijacked stream; ConsoleSize [height, width] as docker's. */
export const ExecStartSchema = Type.Object({
  Detach: Type.Optional(Type.Boolean()),
  Tty: Type.Optional(Type.Boolean()),
  ConsoleSize: Type.Optional(Type.Tuple([
    Type.Integer({ minimum: 1, maximum: 65535, errorMessage: 'expected a height 1-65535' }),
    Type.Integer({ minimum: 1, maximum: 65535, errorMessage: 'expected a width 1-65535' }),
  ])),
}, { additionalProperties: false });
export type ExecStartRequest = Static<typeof ExecStartSchema>;

/** GET /v1/exec/:id/json (docker's shape; Error is pier's: why the process could not run). */
export interface ExecInspect {
  ID: string;
  ContainerID: string;
  Running: boolean;
  /** null until the process has exited */
  ExitCode: number | null;
  Pid: number;
  OpenStdin: boolean;
  OpenStdout: boolean;
  OpenStderr: boolean;
  CanRemove: boolean;
  ProcessConfig: { tty: boolean; entrypoint: string; arguments: string[]; privileged: boolean; user: string };
  Error?: string;
}

// The network layer keeps its own PortMapping; fail to compile if the two ever differ.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const portMappingsAgree: Same<PortMapping, NetworkPortMapping> = true;
void portMappingsAgree;

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
  /** The health check's state (daemon/health.ts), when the container has one. */
  health?: HealthState;
  /** restarting: when (ms since the epoch) the restart manager starts it again; 0: at once. */
  restartAt?: number;
  /** The delay before the last restart (ms): the next one doubles it unless the run was stable. */
  restartDelayMs?: number;
}

export interface ContainerInfo {
  id: string;
  /** One up at every change of the record (daemon/store.ts); events carry it. */
  revision: number;
  name: string;
  created: string;
  image: string;
  imageId: string;
  command: string[];
  config: CreateRequest;
  state: ContainerState;
  mounts: MountRecord[];
  /**
   * container: the network namespace of container `container` (`--network container:NAME`, a pod's
   * members); netnsPath: the namespace a run of a bridge/none container has (joiners use it).
   */
  network: { mode: 'bridge' | 'none' | 'host' | 'container'; container?: string; netnsPath?: string; networks: string[]; ips: Record<string, string>; ports: PortMapping[] };
  /** Namespaces joined from other containers, by their ids. */
  joins?: { ipc?: string; uts?: string; pid?: string };
  /** The pod (id) the container belongs to; infra: it is the pod's infra container. */
  pod?: string;
  infra?: boolean;
  rootfs: string;
  /**
   * The snapshot's mounts as data (pier's own runtime): made onto rootfs in the container's own
   * mount namespace at its start, never on the host. Absent: rootfs is mounted on the host (runc).
   */
  rootfsMounts?: RootfsMount[];
  logPath: string;
  shimSocket: string;
  runtimeRoot: string;
  /** The runc-compatible binary config.runtime named when the container was made or last started; absent: pier's runtime library. */
  runtimePath?: string;
}

/** One mount of a root filesystem as data (the image layer's SnapshotMount). */
export interface RootfsMount { type: 'overlay' | 'bind'; source: string; options: string[] }

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
