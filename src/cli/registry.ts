/**
 * `pier registry …`: `serve --listen HOST:PORT --storage DIR [auth, TLS, log flags]` runs the
 * distribution-spec registry until SIGINT/SIGTERM; `gc [--dry-run] [--grace SECONDS] --storage DIR`
 * collects unreferenced blobs; `ls HOST[/REPOSITORY]` lists a registry's repositories or a
 * repository's tags (any distribution registry).
 */
import { readFileSync } from 'node:fs';
import { writeStderr, writeStdout } from '../common/log.ts';
import { PierError } from '../common/errors.ts';
import { DEFAULT_LIMITS } from '../common/http-server.ts';
import { RegistryClient, gcRegistry, parseRegistryHost, parseRemoteReference, startRegistry } from '../registry/index.ts';
import { pierRoot } from '../image/index.ts';
import { REGISTRY_FLAGS, REGISTRY_USAGE, registryOptions } from './registry-flags.ts';
import { bool, int, parseFlags, str } from './args.ts';
import { reportError } from './report.ts';

const USAGE = `usage: pier registry <command> [flags]

commands:
  serve --listen HOST:PORT --storage DIR     serve the OCI distribution API
      --htpasswd FILE                        users (bcrypt as htpasswd -B makes, or {SHA}); alone: Basic auth
      --access FILE                          JSON {"USER"|"*"|"anonymous": {"REPO-GLOB": ["pull","push","delete"]}}
      --token-issuer                         Docker token auth: serve GET /token, require its Bearer tokens
      --token-key FILE                       PEM EC P-256 key signing tokens (default: generated at start)
      --token-service NAME                   token audience / challenge service (default pier-registry)
      --token-realm URL                      token realm in challenges (default: this server's /token)
      --token-ttl SECONDS                    token lifetime (default 300, at least 60)
      --tls-cert FILE --tls-key FILE         serve HTTPS
      --access-log FILE|none                 one line per request (default: stderr)
      --metrics-listen HOST:PORT             also serve /metrics there (the main port serves it to loopback only)
      --proxy-remote URL                     be a pull-through cache of the registry at URL (http(s)://HOST[:PORT]):
                                             pulls are served from storage, else fetched there and kept;
                                             pushes and deletes are refused
      --proxy-credentials FILE               USER:PASSWORD for that registry
      --header-timeout SECONDS               a client must send its request headers within this (default ${DEFAULT_LIMITS.headersTimeoutMs / 1000})
      --idle-timeout SECONDS                 drop a connection that moves no byte for this long (default ${DEFAULT_LIMITS.idleTimeoutMs / 1000});
                                             a blob body that keeps flowing is never cut
  gc [--dry-run] [--grace SECONDS] --storage DIR
                                             delete blobs no manifest references (blobs touched in
                                             the last --grace seconds, default 600, are kept)
  ls [flags] HOST[:PORT][/REPOSITORY]        the repositories of a registry (those you may pull), or
                                             the tags of a repository
${REGISTRY_USAGE.replace(/^/gm, "    ")}      --root DIR             state root for credentials and certs.d (default $PIER_ROOT)
`;

async function serve(argv: string[]): Promise<number> {
  const p = parseFlags(argv, [
    { name: 'listen', value: true }, { name: 'storage', value: true },
    { name: 'htpasswd', value: true }, { name: 'access', value: true }, { name: 'token-issuer' }, { name: 'token-key', value: true },
    { name: 'token-service', value: true }, { name: 'token-realm', value: true }, { name: 'token-ttl', value: true },
    { name: 'tls-cert', value: true }, { name: 'tls-key', value: true },
    { name: 'access-log', value: true }, { name: 'metrics-listen', value: true },
    { name: 'proxy-remote', value: true }, { name: 'proxy-credentials', value: true },
    { name: 'header-timeout', value: true }, { name: 'idle-timeout', value: true },
  ], { what: 'registry serve' });
  const listen = str(p, 'listen') ?? '127.0.0.1:5000';
  const storage = str(p, 'storage');
  if (!storage) throw new PierError('registry serve: --storage is required');
  if (p.rest.length) throw new PierError(`registry serve: unexpected argument ${JSON.stringify(p.rest[0])}`);
  const tlsCert = str(p, 'tls-cert'), tlsKey = str(p, 'tls-key');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new PierError('registry serve: give both --tls-cert and --tls-key');
  const ttl = int(p, 'token-ttl', 'registry serve');
  const tokenIssuer = bool(p, 'token-issuer');
  for (const f of ['token-key', 'token-service', 'token-realm', 'token-ttl']) {
    if (p.flags.has(f) && !tokenIssuer) throw new PierError(`registry serve: --${f} needs --token-issuer`);
  }
  const realm = str(p, 'token-realm');
  if (realm !== undefined && !/^https?:\/\/[^/]/.test(realm)) throw new PierError('registry serve: --token-realm must be an absolute http(s) URL');
  const logTo = str(p, 'access-log');
  const remote = str(p, 'proxy-remote');
  const credFile = str(p, 'proxy-credentials');
  if (credFile !== undefined && remote === undefined) throw new PierError('registry serve: --proxy-credentials needs --proxy-remote');
  const seconds = (flag: string): number | undefined => {
    const v = int(p, flag, 'registry serve');
    if (v !== undefined && v <= 0) throw new PierError(`registry serve: --${flag} must be a positive number of seconds`);
    return v === undefined ? undefined : v * 1000;
  };
  const headersTimeoutMs = seconds('header-timeout'), idleTimeoutMs = seconds('idle-timeout');
  const reg = await startRegistry({
    listen, storage,
    auth: { htpasswd: str(p, 'htpasswd'), access: str(p, 'access'), tokenIssuer, tokenKey: str(p, 'token-key'), service: str(p, 'token-service'), realm, tokenTtl: ttl },
    tls: tlsCert && tlsKey ? { cert: tlsCert, key: tlsKey } : undefined,
    accessLog: logTo === 'none' ? false : logTo ?? ((line: string) => writeStderr(line)),
    metricsListen: str(p, 'metrics-listen'),
    ...(remote !== undefined ? { proxy: { remote, ...(credFile !== undefined ? { credentials: readCredentials(credFile) } : {}) } } : {}),
    limits: { ...(headersTimeoutMs !== undefined ? { headersTimeoutMs } : {}), ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}) },
  });
  const mode = reg.gate ? (reg.gate.mode === 'token' ? `token auth, realm ${realm ?? `${reg.url}/token`}` : 'basic auth') : 'no auth';
  writeStdout(`pier registry listening on ${reg.url} (storage ${storage}; ${mode}${remote ? `; pull-through cache of ${remote}` : ''}${reg.metricsUrl ? `; metrics on ${reg.metricsUrl}/metrics` : ''})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => { void reg.close().then(resolve); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

/** `USER:PASSWORD` on the first line of a file (kept out of the process list). */
function readCredentials(path: string): { username: string; password: string } {
  let line: string;
  try { line = readFileSync(path, 'utf8').split('\n')[0].trim(); } catch (err) { throw new PierError(`registry serve: cannot read --proxy-credentials ${path}: ${(err as Error).message}`); }
  const colon = line.indexOf(':');
  if (colon <= 0) throw new PierError(`registry serve: --proxy-credentials ${path} must hold USER:PASSWORD`);
  return { username: line.slice(0, colon), password: line.slice(colon + 1) };
}

async function gc(argv: string[]): Promise<number> {
  const p = parseFlags(argv, [{ name: 'storage', value: true }, { name: 'dry-run' }, { name: 'grace', value: true }], { what: 'registry gc' });
  const storage = str(p, 'storage');
  if (!storage) throw new PierError('registry gc: --storage is required');
  const grace = int(p, 'grace', 'registry gc');
  if (grace !== undefined && grace < 0) throw new PierError('registry gc: --grace must not be negative');
  const dryRun = bool(p, 'dry-run');
  const r = await gcRegistry({ storage, dryRun, graceMs: grace === undefined ? undefined : grace * 1000 });
  for (const d of r.swept) writeStdout(`${dryRun ? 'would delete' : 'deleted'} ${d}\n`);
  writeStdout(`${r.marked} blobs referenced; ${r.swept.length} ${dryRun ? 'would be deleted' : 'deleted'} (${r.bytes} bytes); ${r.kept.length} unreferenced kept (younger than the grace period); ${r.staleUploads.length} abandoned upload sessions ${dryRun ? 'would be ' : ''}removed\n`);
  return 0;
}

async function ls(argv: string[]): Promise<number> {
  const p = parseFlags(argv, [...REGISTRY_FLAGS, { name: 'root', value: true }], { what: 'registry ls' });
  if (p.rest.length !== 1) throw new PierError('give HOST[:PORT] or HOST[:PORT]/REPOSITORY (see pier registry --help)');
  const arg = p.rest[0].replace(/^https?:\/\//, '').replace(/\/+$/, '');
  // (parseRemoteReference would fill in the default tag, so look at what was typed)
  if (arg.includes('/') && (arg.includes('@') || arg.slice(arg.lastIndexOf('/') + 1).includes(':'))) {
    throw new PierError(`${JSON.stringify(p.rest[0])}: give a repository without a tag or digest`);
  }
  const repo = arg.includes('/') ? parseRemoteReference(arg) : undefined;
  const host = repo?.host ?? parseRegistryHost(arg);
  const client = new RegistryClient(host, registryOptions(p, str(p, 'root') ?? pierRoot(), host));
  try {
    const names = repo ? await client.tags(repo.repository) : await client.catalog();
    writeStdout(names.map((n) => `${n}\n`).join(''));
  } finally {
    client.close();
  }
  return 0;
}

export async function registryMain(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve': return await serve(rest);
      case 'gc': return await gc(rest);
      case 'ls': return await ls(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        writeStdout(USAGE);
        return cmd === undefined ? 1 : 0;
      default:
        throw new PierError(`registry: unknown command ${JSON.stringify(cmd)} (see pier registry --help)`);
    }
  } catch (err) {
    return reportError(err, { what: cmd === 'ls' ? 'registry ls' : undefined });
  }
}
