/**
 * `pier create [flags] IMAGE [COMMAND [ARG…]]`: make a container without starting it. Its flags are
 * `pier run`'s, which adds -d and --rm's behaviour on top.
 */
import { resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { PierError } from '../../common/errors.ts';
import { writeStderr, writeStdout } from '../../common/log.ts';
import { EngineApiError, parseRestartPolicy, type CreateRequest, type EngineClient, type HealthConfig } from '../../engine/index.ts';
import { bool, list, str, type FlagSpec, type Parsed } from '../args.ts';
import { parseDurationNs } from '../../common/duration.ts';
import { client, command, envArgs, keyValues, parse, parsePort, parseSize, readEnvFile } from './common.ts';

export const CREATE_FLAGS: FlagSpec[] = [
  { name: 'interactive', short: 'i' },
  { name: 'tty', short: 't' },
  { name: 'name', value: true },
  { name: 'env', short: 'e', value: true, multi: true },
  { name: 'env-file', value: true, multi: true },
  { name: 'publish', short: 'p', value: true, multi: true },
  { name: 'volume', short: 'v', value: true, multi: true },
  { name: 'workdir', short: 'w', value: true },
  { name: 'user', short: 'u', value: true },
  { name: 'entrypoint', value: true },
  { name: 'hostname', value: true },
  { name: 'network', value: true },
  { name: 'net', value: true },
  { name: 'network-alias', value: true, multi: true },
  { name: 'memory', short: 'm', value: true },
  { name: 'cpus', value: true },
  { name: 'pids-limit', value: true },
  { name: 'restart', value: true },
  { name: 'read-only' },
  { name: 'cap-add', value: true, multi: true },
  { name: 'cap-drop', value: true, multi: true },
  { name: 'init' },
  { name: 'rm' },
  { name: 'runtime', value: true },
  { name: 'label', short: 'l', value: true, multi: true },
  { name: 'log-opt', value: true, multi: true },
  { name: 'add-host', value: true, multi: true },
  { name: 'stop-signal', value: true },
  { name: 'stop-timeout', value: true },
  { name: 'pull', value: true },
  { name: 'health-cmd', value: true },
  { name: 'health-interval', value: true },
  { name: 'health-timeout', value: true },
  { name: 'health-retries', value: true },
  { name: 'health-start-period', value: true },
  { name: 'health-start-interval', value: true },
  { name: 'no-healthcheck' },
  { name: 'pod', value: true },
  { name: 'ipc', value: true },
  { name: 'uts', value: true },
  { name: 'pid', value: true },
];

export const CREATE_USAGE_FLAGS = `flags:
  -i, --interactive        keep stdin open
  -t, --tty                allocate a terminal
  --name NAME              container name
  -e, --env K=V            set an environment variable (repeatable); --env-file FILE
  -p, --publish [IP:]HOST:CTR[/udp]   publish a port (repeatable)
  -v, --volume SRC:DST[:ro]           named volume, host path, or /DST for an anonymous volume
  -w, --workdir DIR        working directory      -u, --user USER[:GROUP]
  --entrypoint CMD         replace the image's entrypoint ("" clears it)
  --hostname NAME          --network bridge|none|host|NAME|container:NAME   --network-alias NAME
  --pod POD                join a pod (its network and shared namespaces; ports go on the pod)
  --ipc, --uts, --pid container:NAME   join another container's namespace
  -m, --memory SIZE        memory limit (512m, 1g)   --cpus N   --pids-limit N
  --restart no|on-failure[:N]|always|unless-stopped
  --read-only              read-only root filesystem
  --cap-add CAP, --cap-drop CAP   (ALL allowed)
  --init                   run pier-init as PID 1 (reaps zombies, forwards signals)
  --rm                     remove the container when it exits
  --runtime NAME           pier (default: pier's in-process runtime), runc (when pierd found one),
                           or a runtime from pierd's daemon.json
  -l, --label K=V          --log-opt max-size=10m|max-file=3   --add-host HOST:IP
  --stop-signal SIG        --stop-timeout SECONDS
  --health-cmd CMD         a health check run with /bin/sh -c (exit 0: healthy)
  --health-interval D      --health-timeout D   --health-start-period D   --health-start-interval D
                           (Go durations: 30s, 1m30s, 500ms)   --health-retries N
  --no-healthcheck         turn off the image's HEALTHCHECK
  --pull missing|always|never   pull an image named by HOST/REPO[:TAG] when it is not here
                           (default missing), every time, or never
`;


function positive(s: string | undefined, what: string, integer: boolean): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new PierError(`invalid ${what} ${JSON.stringify(s)}: must be a positive ${integer ? 'integer' : 'number'}`);
  return n;
}

/** `--health-*` / `--no-healthcheck` as create's healthcheck (undefined: the image's as it is). */
export function healthFrom(p: Parsed): HealthConfig | undefined {
  const names = ['health-cmd', 'health-interval', 'health-timeout', 'health-retries', 'health-start-period', 'health-start-interval'];
  const given = names.filter((n) => str(p, n) !== undefined);
  if (bool(p, 'no-healthcheck')) {
    if (given.length) throw new PierError(`--no-healthcheck conflicts with --${given[0]}`);
    return { Test: ['NONE'] };
  }
  if (!given.length) return undefined;
  const hc: HealthConfig = {};
  const cmd = str(p, 'health-cmd');
  if (cmd !== undefined) {
    if (cmd.trim() === '') throw new PierError('--health-cmd: give a command');
    hc.Test = ['CMD-SHELL', cmd];
  }
  for (const [flag, key] of [['health-interval', 'Interval'], ['health-timeout', 'Timeout'], ['health-start-period', 'StartPeriod'], ['health-start-interval', 'StartInterval']] as const) {
    const v = str(p, flag);
    if (v === undefined) continue;
    const ns = parseDurationNs(v);
    if (ns === undefined || ns < 0) throw new PierError(`invalid --${flag} ${JSON.stringify(v)}: a duration like 30s, 1m30s or 500ms`);
    if (ns !== 0 && ns < 1e6) throw new PierError(`invalid --${flag} ${JSON.stringify(v)}: at least 1ms (or 0 for the default)`);
    hc[key] = ns;
  }
  const retries = str(p, 'health-retries');
  if (retries !== undefined) {
    if (!/^\d{1,9}$/.test(retries)) throw new PierError(`invalid --health-retries ${JSON.stringify(retries)}: a whole number >= 0`);
    hc.Retries = Number(retries);
  }
  return hc;
}

/** The create request for parsed run/create flags; rest = IMAGE [COMMAND…]. */
export function requestFrom(p: Parsed): CreateRequest {
  if (p.rest.length === 0) throw new PierError('give an image (see --help)');
  const [image, ...cmd] = p.rest;
  const log: { maxSize?: number; maxFiles?: number } = {};
  for (const [k, v] of Object.entries(keyValues(list(p, 'log-opt'), 'log option'))) {
    if (k === 'max-size') log.maxSize = parseSize(v, 'log max-size');
    else if (k === 'max-file') log.maxFiles = positive(v, 'log max-file', true);
    else throw new PierError(`unknown log option ${JSON.stringify(k)}: use max-size or max-file`);
  }
  for (const h of list(p, 'add-host')) {
    if (!/^[^:]+:\d{1,3}(\.\d{1,3}){3}$/.test(h)) throw new PierError(`invalid --add-host ${JSON.stringify(h)}: use HOST:IPv4`);
  }
  const entrypoint = str(p, 'entrypoint');
  const network = str(p, 'network') ?? str(p, 'net');
  const stopTimeout = str(p, 'stop-timeout');
  if (stopTimeout !== undefined && !/^\d+$/.test(stopTimeout)) throw new PierError(`invalid --stop-timeout ${JSON.stringify(stopTimeout)}: whole seconds`);
  const memory = str(p, 'memory');
  const healthcheck = healthFrom(p);
  const req: CreateRequest = {
    image,
    ...(cmd.length ? { cmd } : {}),
    ...(entrypoint !== undefined ? { entrypoint: entrypoint === '' ? [] : [entrypoint] } : {}),
    env: [...list(p, 'env-file').flatMap(readEnvFile), ...envArgs(list(p, 'env'))],
    ...(str(p, 'name') !== undefined ? { name: str(p, 'name') } : {}),
    ...(str(p, 'workdir') !== undefined ? { workdir: str(p, 'workdir') } : {}),
    ...(str(p, 'user') !== undefined ? { user: str(p, 'user') } : {}),
    ...(str(p, 'hostname') !== undefined ? { hostname: str(p, 'hostname') } : {}),
    tty: bool(p, 'tty'),
    stdin: bool(p, 'interactive'),
    ...(network !== undefined ? { network } : {}),
    ...(str(p, 'pod') !== undefined ? { pod: str(p, 'pod') } : {}),
    ...Object.fromEntries((['ipc', 'uts', 'pid'] as const).filter((k) => str(p, k) !== undefined).map((k) => [k, str(p, k)])),
    networkAliases: list(p, 'network-alias'),
    ports: list(p, 'publish').map(parsePort),
    volumes: list(p, 'volume').map((v) => {
      // A relative host path is relative to where the command runs (docker needs absolute ones; be kind).
      const [src, ...restParts] = v.split(':');
      return restParts.length && (src.startsWith('.') || src.startsWith('~')) ? [resolve(src), ...restParts].join(':') : v;
    }),
    ...(memory !== undefined ? { memory: parseSize(memory, 'memory') } : {}),
    ...(str(p, 'cpus') !== undefined ? { cpus: positive(str(p, 'cpus'), '--cpus', false) } : {}),
    ...(str(p, 'pids-limit') !== undefined ? { pidsLimit: positive(str(p, 'pids-limit'), '--pids-limit', true) } : {}),
    ...(str(p, 'restart') !== undefined ? { restart: parseRestartPolicy(str(p, 'restart')!) } : {}),
    readOnly: bool(p, 'read-only'),
    capAdd: list(p, 'cap-add'),
    capDrop: list(p, 'cap-drop'),
    init: bool(p, 'init'),
    autoRemove: bool(p, 'rm'),
    ...(str(p, 'runtime') !== undefined ? { runtime: runtimeName(str(p, 'runtime')!) } : {}),
    labels: keyValues(list(p, 'label'), 'label'),
    ...(Object.keys(log).length ? { log } : {}),
    extraHosts: list(p, 'add-host'),
    ...(str(p, 'stop-signal') !== undefined ? { stopSignal: str(p, 'stop-signal') } : {}),
    ...(stopTimeout !== undefined ? { stopTimeout: Number(stopTimeout) } : {}),
    ...(healthcheck ? { healthcheck } : {}),
  };
  if (req.memory !== undefined && req.memory < 6 * 1024 * 1024) throw new PierError('invalid --memory: the minimum is 6m');
  return req;
}

/**
 * A runtime is named, and pierd alone knows which names it has (its own, runc, daemon.json's). A
 * path is sent absolute: pierd still takes the path of a configured runtime, as older pier sent.
 */
function runtimeName(name: string): string {
  return name.includes('/') ? resolve(name) : name;
}

const USAGE = `usage: pier create [flags] IMAGE [COMMAND [ARG...]]

${CREATE_USAGE_FLAGS}`;

export function createMain(argv: string[]): Promise<number> {
  return command('create', USAGE, argv, async () => {
    const p = parse(argv, CREATE_FLAGS, 'create', true);
    const req = requestFrom(p);
    const c = await createContainer(client(), req, pullPolicy(p));
    writeStdout(`${c.id}\n`);
    return 0;
  });
}

export type PullPolicy = 'missing' | 'always' | 'never';

export function pullPolicy(p: Parsed): PullPolicy {
  const v = str(p, 'pull') ?? 'missing';
  if (v !== 'missing' && v !== 'always' && v !== 'never') throw new PierError(`invalid --pull ${JSON.stringify(v)}: use missing, always or never`);
  return v;
}

/**
 * POST /containers, pulling the image first as docker does: with `always`, or with `missing` when
 * pierd says the image is not here and its name carries a registry host. The pull's progress goes
 * to stderr, so stdout stays the container's.
 */
export async function createContainer(c: EngineClient, req: CreateRequest, policy: PullPolicy): Promise<{ id: string }> {
  if (policy === 'always') await pullFor(req.image);
  try {
    return await c.json<{ id: string }>('POST', '/containers', req);
  } catch (err) {
    const missing = err instanceof EngineApiError && err.status === 404 && /^image ".*" not found/.test(err.message);
    if (policy !== 'missing' || !missing || !namesRegistry(req.image)) throw err;
    writeStderr(`Unable to find image '${req.image}' locally\n`);
    await pullFor(req.image);
    return c.json<{ id: string }>('POST', '/containers', req);
  }
}

/**
 * host[:port]/… as the registry client reads names (a dot, a port or localhost before the first
 * slash). Its own copy of parseRemoteReference's test: importing that drags the image layer into
 * pier-client.cjs (215 KB, measured; test/unit/bundles.test.ts).
 */
function namesRegistry(image: string): boolean {
  const first = image.split('/')[0];
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['));
}

/**
 * The pull is the full CLI's `pier pull`, in a child process: this small bundle (pier-client, what
 * every `pier run` loads) stays without the image and registry code. Its output goes to stderr; its
 * one error line becomes this command's. A signal reaches the child too, which cleans up after itself.
 */
async function pullFor(image: string): Promise<void> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], 'pull', image], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(process.stderr);
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const code = await new Promise<number | null>((resolve, reject) => { child.on('error', reject); child.on('close', resolve); });
  if (code !== 0) throw new PierError(err.trim().split('\n').pop()?.replace(/^pier: /, '') || `pull ${image} failed (exit status ${code})`);
}
