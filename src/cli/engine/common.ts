/**
 * What the docker-style commands share: the client, docker's value syntaxes (sizes, ports, env
 * files, combined short flags like -it), --format json, and the one way a command fails.
 */
import { readFileSync } from 'node:fs';
import { PierError, messageOf } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import { EngineClient, type PortMapping } from '../../engine/index.ts';
import { parseFlags, type FlagSpec, type Parsed } from '../args.ts';
import { reportError } from '../report.ts';

export function client(): EngineClient {
  return new EngineClient();
}

/** `-it` → `-i -t` when every letter is a known boolean short flag (only before the first positional). */
export function expandShort(argv: string[], specs: FlagSpec[]): string[] {
  const bools = new Set(specs.filter((s) => s.short && !s.value).map((s) => s.short!));
  const valued = new Set(specs.filter((s) => s.short && s.value).map((s) => s.short!));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-' || a === '--') { out.push(...argv.slice(i)); break; }
    const m = /^-([a-zA-Z]{2,})$/.exec(a);
    if (m && [...m[1]].every((c, j) => bools.has(c) || (j === m[1].length - 1 && valued.has(c)))) {
      for (const c of m[1]) out.push(`-${c}`);
      continue;
    }
    out.push(a);
    const body = a.replace(/^--?/, '');
    const spec = specs.find((s) => s.name === body || s.short === body);
    if (spec?.value && !a.includes('=') && i + 1 < argv.length) out.push(argv[++i]);
  }
  return out;
}

/** Thrown by parse() for --help/-h among the flags; command() prints the usage. */
class HelpRequested extends Error {}

export function parse(argv: string[], specs: FlagSpec[], what: string, stopAtPositional = false): Parsed {
  const all = [...specs, { name: 'help', short: 'h' }, { name: 'debug' }];
  const p = parseFlags(expandShort(argv, all), all, { what, stopAtPositional });
  if (p.flags.get('help') === true) throw new HelpRequested();
  return p;
}

/** Run a command body with docker-style failure: `pier: what: message`, non-zero exit. */
export async function command(what: string, usage: string, argv: string[], fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HelpRequested) {
      writeStdout(usage);
      return 0;
    }
    return reportError(err, { what, debug: argv.includes('--debug') });
  }
}

/**
 * `pier GROUP SUB …` (network, volume, system): usage without or with --help, `run` for a known
 * subcommand (undefined: unknown), failures as `command` reports them.
 */
export function subcommands(group: string, usage: string, argv: string[],
  run: (c: EngineClient, sub: string, rest: string[]) => Promise<number | undefined>): Promise<number> {
  const [sub, ...rest] = argv;
  return command(`${group} ${sub ?? ''}`.trim(), usage, rest, async () => {
    if (!sub || sub === '--help' || sub === '-h') { writeStdout(usage); return sub ? 0 : 1; }
    const code = await run(client(), sub, rest);
    if (code === undefined) throw new PierError(`unknown command ${JSON.stringify(sub)} (see pier ${group} --help)`);
    return code;
  });
}

/**
 * The verbs named objects (networks, volumes) share: `rm NAME…` (`rmFlags` accepted), `inspect
 * NAME…` and `prune`, against `/<kind>s`. Undefined for any other verb.
 */
export async function objectVerb(c: EngineClient, kind: 'network' | 'volume', sub: string, rest: string[], rmFlags: FlagSpec[] = []): Promise<number | undefined> {
  const base = `/${kind}s`;
  switch (sub) {
    case 'rm':
    case 'remove': {
      const p = parse(rest, rmFlags, `${kind} rm`);
      if (p.rest.length === 0) throw new PierError(`give at least one ${kind}`);
      for (const n of p.rest) { await c.json('DELETE', `${base}/${q(n)}`); writeStdout(`${n}\n`); }
      return 0;
    }
    case 'inspect': {
      const p = parse(rest, [], `${kind} inspect`);
      if (p.rest.length === 0) throw new PierError(`give at least one ${kind}`);
      printJson(await Promise.all(p.rest.map((n) => c.json('GET', `${base}/${q(n)}`))));
      return 0;
    }
    case 'prune': {
      const r = await c.json<{ removed: string[] }>('POST', `${base}/prune`);
      writeStdout(r.removed.map((n) => `Deleted ${kind} ${n}\n`).join(''));
      return 0;
    }
    default:
      return undefined;
  }
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** docker's sizes: 512m, 1g, 1024 (bytes), 1.5g. */
export function parseSize(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(s.trim());
  if (!m) throw new PierError(`invalid ${what} ${JSON.stringify(s)}: use a number with an optional unit b, k, m or g`);
  const n = Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]);
  if (n <= 0) throw new PierError(`invalid ${what} ${JSON.stringify(s)}: must be more than 0`);
  return n;
}

function portNum(s: string, spec: string): number {
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw new PierError(`invalid port ${JSON.stringify(spec)}: ${JSON.stringify(s)} is not a port number (1-65535)`);
  return Number(s);
}

/** `-p [hostIp:][hostPort:]containerPort[/tcp|udp]`; no host port → 0 (the daemon picks a free one). */
export function parsePort(spec: string): PortMapping {
  const [addr, proto = 'tcp', extra] = spec.split('/');
  if (extra !== undefined || (proto !== 'tcp' && proto !== 'udp')) throw new PierError(`invalid port ${JSON.stringify(spec)}: protocol must be tcp or udp`);
  const parts = addr.split(':');
  let hostIp: string | undefined, host = '', ctr: string;
  if (parts.length === 1) ctr = parts[0];
  else if (parts.length === 2) [host, ctr] = parts as [string, string];
  else if (parts.length === 3) [hostIp, host, ctr] = parts as [string, string, string];
  else throw new PierError(`invalid port ${JSON.stringify(spec)}`);
  if (hostIp !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(hostIp)) throw new PierError(`invalid port ${JSON.stringify(spec)}: ${JSON.stringify(hostIp)} is not an IPv4 address`);
  return {
    ...(hostIp ? { hostIp } : {}),
    hostPort: host === '' ? 0 : portNum(host, spec),
    containerPort: portNum(ctr, spec),
    protocol: proto,
  };
}

/** docker's --env-file: KEY=VALUE lines, # comments, a bare KEY takes the value from our environment. */
export function readEnvFile(path: string): string[] {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (err) { throw new PierError(`cannot read env file ${path}: ${messageOf(err)}`); }
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line.trim() : line.slice(0, eq);
    if (!/^[^\s=]+$/.test(key)) throw new PierError(`env file ${path}: invalid variable name ${JSON.stringify(key)}`);
    if (eq < 0) { if (process.env[key] !== undefined) out.push(`${key}=${process.env[key]}`); }
    else out.push(line);
  }
  return out;
}

/** `-e KEY=VALUE`, or `-e KEY` taking the value from our environment (dropped if unset). */
export function envArgs(values: string[]): string[] {
  return values.flatMap((e) => {
    if (e.includes('=')) {
      if (e.startsWith('=')) throw new PierError(`invalid environment variable ${JSON.stringify(e)}`);
      return [e];
    }
    return process.env[e] !== undefined ? [`${e}=${process.env[e]}`] : [];
  });
}

export function printJson(value: unknown): void {
  writeStdout(`${JSON.stringify(value, null, 2)}\n`);
}

export function checkFormat(format: string | undefined): 'json' | 'table' {
  if (format === undefined || format === 'table') return 'table';
  if (format === 'json' || format === '{{json .}}') return 'json';
  throw new PierError(`unsupported --format ${JSON.stringify(format)}: use json or table`);
}

export function ago(iso: string | undefined): string {
  if (!iso) return '';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)} seconds`;
  if (s < 3600) return `${Math.floor(s / 60)} minutes`;
  if (s < 86400) return `${Math.floor(s / 3600)} hours`;
  return `${Math.floor(s / 86400)} days`;
}

export function humanSize(n: number): string {
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)}${u[i]}`;
}

export function short(id: string): string {
  return id.slice(0, 12);
}

export const q = encodeURIComponent;

/** KEY=VALUE flags (--label, --log-opt) as a record; `what` names them in the error. */
export function keyValues(values: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new PierError(`invalid ${what} ${JSON.stringify(v)}: use KEY=VALUE`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}
