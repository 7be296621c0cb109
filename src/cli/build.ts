/**
 * `pier build -t name:tag [-f Containerfile] [--build-arg K=V] [--target stage] CONTEXT`: build an
 * image from a Containerfile into the local store. Progress goes to stdout (RUN output too), one
 * `STEP n/N:` line per instruction; `--quiet` prints only the image ID.
 */
import { isatty } from 'node:tty';
import { writeStderr, writeStdout } from '../common/log.ts';
import { PierError } from '../common/errors.ts';
import { ImageService, build, type BuildNetworkMode, type BuildNetworkProvider, type Compression } from '../image/index.ts';
import { EngineClient } from '../engine/index.ts';
import { bool, list, parseFlags, str } from './args.ts';
import { reportError } from './report.ts';

const USAGE = `usage: pier build [flags] CONTEXT

flags:
  -t, --tag NAME[:TAG]      tag the result (repeatable)
  -f, --file PATH           the Containerfile (default CONTEXT/Containerfile, else CONTEXT/Dockerfile)
  --build-arg KEY=VALUE     value for a declared ARG (repeatable)
  --target STAGE            build up to this stage (name or index)
  --timestamp SECONDS       reproducible build: created times and layer mtimes (default $SOURCE_DATE_EPOCH)
  --compression gzip|zstd   layer compression (default gzip)
  --no-cache                run every step
  --network MODE            RUN steps' network: default (a namespace of their own on pierd's
                            default bridge network, with egress), none (only lo), host (the host's)
  -q, --quiet               print only the image ID
  --root DIR                state root (default $PIER_ROOT, else /var/lib/pier)
`;

function epochOf(v: string | undefined, what: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new PierError(`${what} must be a whole number of seconds since the epoch, not ${JSON.stringify(v)}`);
  return Number(v);
}

/** docker's values: "default" (and "bridge") is a namespace on the default network. */
function networkMode(v: string | undefined): BuildNetworkMode {
  if (v === undefined || v === '' || v === 'default' || v === 'bridge') return 'bridge';
  if (v === 'host' || v === 'none') return v;
  throw new PierError(`build: --network must be default, none or host, not ${JSON.stringify(v)}`);
}

/** Sandboxes pierd lends for as long as this process's request for each stays open (started if absent). */
function pierdSandboxes(): BuildNetworkProvider {
  let client: EngineClient | undefined;
  return { sandbox: (hostname) => (client ??= new EngineClient()).buildSandbox(hostname) };
}

export async function buildMain(argv: string[]): Promise<number> {
  let debug = false;
  try {
    const p = parseFlags(argv, [
      { name: 'tag', short: 't', value: true, multi: true },
      { name: 'file', short: 'f', value: true },
      { name: 'build-arg', value: true, multi: true },
      { name: 'target', value: true },
      { name: 'timestamp', value: true },
      { name: 'compression', value: true },
      { name: 'no-cache' },
      { name: 'network', value: true },
      { name: 'quiet', short: 'q' },
      { name: 'root', value: true },
      { name: 'debug' },
      { name: 'help', short: 'h' },
    ], { what: 'build' });
    debug = bool(p, 'debug');
    if (bool(p, 'help')) {
      writeStdout(USAGE);
      return 0;
    }
    if (p.rest.length !== 1) throw new PierError(`build: give one context directory (see pier build --help)`);
    const buildArgs: Record<string, string> = {};
    for (const a of list(p, 'build-arg')) {
      const eq = a.indexOf('=');
      // docker's `--build-arg NAME` takes the value from the environment.
      if (eq < 0) {
        const v = process.env[a];
        if (v !== undefined) buildArgs[a] = v;
      } else {
        buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
      }
    }
    const compression = (str(p, 'compression') ?? 'gzip') as Compression;
    if (compression !== 'gzip' && compression !== 'zstd') throw new PierError(`build: --compression must be gzip or zstd, not ${JSON.stringify(compression)}`);
    const network = networkMode(str(p, 'network'));
    const quiet = bool(p, 'quiet');
    const sourceDateEpoch = epochOf(str(p, 'timestamp'), 'build: --timestamp') ?? epochOf(process.env.SOURCE_DATE_EPOCH, 'SOURCE_DATE_EPOCH');
    const tty = isatty(1);
    let stepStart = Date.now();
    const svc = new ImageService({ root: str(p, 'root') || undefined });
    const result = await build(svc, {
      context: p.rest[0],
      file: str(p, 'file'),
      tags: list(p, 'tag'),
      buildArgs,
      target: str(p, 'target'),
      sourceDateEpoch,
      compression,
      noCache: bool(p, 'no-cache'),
      network,
      ...(network === 'bridge' ? { networkProvider: pierdSandboxes() } : {}),
      progress: quiet ? undefined : (line) => {
        // On a terminal each step's result line also says how long it took.
        if (tty && line.startsWith('--->')) line += ` (${((Date.now() - stepStart) / 1000).toFixed(1)}s)`;
        if (line.startsWith('STEP ')) stepStart = Date.now();
        writeStdout(`${line}\n`);
      },
      warn: (msg) => writeStderr(`pier: warning: ${msg}\n`),
      runOutput: quiet ? ['ignore', 'ignore'] : [1, 2],
    });
    if (!quiet) {
      writeStdout(`COMMIT${result.tags.length ? ` ${result.tags.join(' ')}` : ''}\n`);
      for (const t of result.tags) writeStdout(`Successfully tagged ${t}\n`);
    }
    writeStdout(`${result.id.replace(/^sha256:/, '')}\n`);
    return 0;
  } catch (err) {
    return reportError(err, { debug });
  }
}
