/**
 * Containerfile parser: directives, comments, line continuations, JSON (exec) vs shell form and
 * per-instruction flags. Variable substitution happens later, in the executor, because its values
 * (ARG, ENV) are only known while the build runs; the functions for it live in `words.ts`.
 */
import { PierError } from '../../common/errors.ts';
import { parseDurationNs } from '../../common/duration.ts';

export interface Instruction {
  /** upper-case keyword: FROM, RUN, … */
  kind: string;
  /** 1-based line of the keyword */
  line: number;
  /** the text after the keyword and its flags, continuations joined, leading/trailing space trimmed */
  args: string;
  /** `--name=value` flags (a repeated flag keeps the last value; `--mount` is refused) */
  flags: Record<string, string>;
  /** the JSON array, when the instruction is in exec form */
  json?: string[];
  /** the instruction as written (continuations joined), for history and messages */
  original: string;
}

export interface Stage {
  index: number;
  /** the `AS name`, lower-cased */
  name?: string;
  from: Instruction;
  instructions: Instruction[];
}

export interface Containerfile {
  /** file name used in error messages */
  file: string;
  escape: string;
  /** ARGs before the first FROM */
  metaArgs: Instruction[];
  stages: Stage[];
}

/** Flags each instruction accepts (anything else is an error). */
const FLAGS: Record<string, string[]> = {
  FROM: ['platform'],
  COPY: ['from', 'chown', 'chmod', 'link'],
  ADD: ['chown', 'chmod', 'link'],
  RUN: [],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

const KNOWN = new Set([
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER',
  'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
]);

/** Instructions pier build reads but does not carry out, with why. */
const REFUSED: Record<string, string> = {
  ONBUILD: 'ONBUILD triggers are not supported by pier build',
};

/** Instructions whose arguments may be a JSON array. */
const JSON_FORMS = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'COPY', 'ADD', 'VOLUME']);

export class ContainerfileError extends PierError {}

export function fail(file: string, line: number, kind: string | undefined, msg: string): never {
  throw new ContainerfileError(`${file}:${line}: ${kind ? `${kind}: ` : ''}${msg}`);
}

/** A JSON array of strings, or undefined when `s` is not one (then it is shell form). */
function parseJsonArray(s: string): string[] | undefined {
  if (!s.startsWith('[')) return undefined;
  let v: unknown;
  try { v = JSON.parse(s); } catch { return undefined; }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) return undefined;
  return v as string[];
}

/** Leading `--name=value` / `--name` flags of an instruction's arguments. */
function splitFlags(rest: string, file: string, line: number, kind: string): { flags: Record<string, string>; args: string } {
  const flags: Record<string, string> = {};
  let s = rest;
  for (;;) {
    const m = /^--([A-Za-z][A-Za-z0-9-]*)(?:=("[^"]*"|\S*))?(?:\s+|$)/.exec(s);
    if (!m) break;
    const name = m[1].toLowerCase();
    const allowed = FLAGS[kind] ?? [];
    if (kind === 'RUN' && (name === 'mount' || name === 'network' || name === 'security')) {
      fail(file, line, kind, `--${name} is not supported by pier build`);
    }
    if (!allowed.includes(name)) fail(file, line, kind, `unknown flag --${name}`);
    let value = m[2] ?? 'true';
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (m[2] !== undefined && value === '' && name !== 'link') fail(file, line, kind, `--${name} needs a value`);
    flags[name] = value;
    s = s.slice(m[0].length);
  }
  return { flags, args: s.trim() };
}

/** Directives: `# key=value` lines at the very top of the file, before anything else. */
function readDirectives(lines: string[], file: string): { escape: string; start: number } {
  let escape = '\\';
  const seen = new Set<string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const m = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/.exec(lines[i]);
    if (!m) break;
    const key = m[1].toLowerCase();
    if (key !== 'escape' && key !== 'syntax' && key !== 'check') break; // an ordinary comment ends the directives
    if (seen.has(key)) fail(file, i + 1, undefined, `directive "${key}" given twice`);
    seen.add(key);
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') fail(file, i + 1, undefined, `invalid escape directive ${JSON.stringify(m[2])}: use \\ or \``);
      escape = m[2];
    }
    // syntax= names a BuildKit frontend image; pier has one parser, so it is read and ignored.
  }
  return { escape, start: i };
}

/** Split the file into logical instructions: comments dropped, continuations joined. */
export function parseContainerfile(text: string, file = 'Containerfile'): Containerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const { escape } = readDirectives(lines, file);
  const logical: { line: number; text: string }[] = [];
  let cur: { line: number; parts: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const trimmedStart = raw.replace(/^\s+/, '');
    // Comment lines are dropped, also in the middle of a continued instruction (as docker does).
    if (trimmedStart.startsWith('#')) continue;
    // Blank lines never end an instruction: inside a continuation they are skipped, as docker does.
    if (trimmedStart === '') continue;
    const body = raw.replace(/\s+$/, '');
    // Joined without a separator, the next line's leading blanks kept, as docker joins them.
    const continues = body.endsWith(escape);
    const piece = continues ? body.slice(0, -1) : body;
    if (!cur) cur = { line: i + 1, parts: [] };
    cur.parts.push(piece);
    if (!continues) {
      logical.push({ line: cur.line, text: cur.parts.join('').trim() });
      cur = undefined;
    }
  }
  if (cur) {
    const t = cur.parts.join('').trim();
    if (t) logical.push({ line: cur.line, text: t });
  }

  const out: Containerfile = { file, escape, metaArgs: [], stages: [] };
  const names = new Set<string>();
  for (const { line, text: t } of logical) {
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(t)!;
    const kind = m[1].toUpperCase();
    const rest = (m[2] ?? '').trim();
    if (!KNOWN.has(kind)) fail(file, line, undefined, `unknown instruction ${JSON.stringify(m[1])}`);
    if (REFUSED[kind]) fail(file, line, kind, REFUSED[kind]);
    if (/<<-?["']?[A-Za-z_][A-Za-z0-9_]*["']?/.test(rest) && (kind === 'RUN' || kind === 'COPY' || kind === 'ADD')) {
      if (!parseJsonArray(rest)) fail(file, line, kind, 'heredocs (<<EOF) are not supported by pier build');
    }
    const { flags, args } = splitFlags(rest, file, line, kind);
    if (args === '' && kind !== 'RUN') fail(file, line, kind, 'needs at least one argument');
    if (args === '' && kind === 'RUN') fail(file, line, kind, 'needs a command');
    const json = JSON_FORMS.has(kind) ? parseJsonArray(args) : undefined;
    if (json !== undefined && json.length === 0 && kind !== 'CMD' && kind !== 'ENTRYPOINT') fail(file, line, kind, 'empty JSON array');
    const ins: Instruction = { kind, line, args, flags, original: t, ...(json !== undefined ? { json } : {}) };
    checkShape(ins, file);
    if (kind === 'FROM') {
      const w = args.split(/\s+/);
      let name: string | undefined;
      if (w.length === 3 && w[1].toLowerCase() === 'as') {
        name = w[2].toLowerCase();
        if (!/^[a-z][a-z0-9._-]*$/.test(name)) fail(file, line, kind, `invalid stage name ${JSON.stringify(w[2])}`);
        if (names.has(name)) fail(file, line, kind, `duplicate stage name ${JSON.stringify(w[2])}`);
        names.add(name);
      } else if (w.length !== 1) {
        fail(file, line, kind, 'expected "FROM image" or "FROM image AS name"');
      }
      out.stages.push({ index: out.stages.length, name, from: ins, instructions: [] });
      continue;
    }
    const stage = out.stages[out.stages.length - 1];
    if (!stage) {
      if (kind !== 'ARG') fail(file, line, kind, 'only ARG may come before the first FROM');
      out.metaArgs.push(ins);
      continue;
    }
    stage.instructions.push(ins);
  }
  if (out.stages.length === 0) fail(file, logical.length ? logical[logical.length - 1].line : 1, undefined, 'no FROM instruction');
  return out;
}

/** Checks that need no variable values: argument counts and forms. */
function checkShape(ins: Instruction, file: string): void {
  const { kind, args, json, line } = ins;
  switch (kind) {
    case 'SHELL':
      if (!json) fail(file, line, kind, 'needs a JSON array, e.g. SHELL ["/bin/sh", "-c"]');
      break;
    case 'COPY':
    case 'ADD': {
      const n = json ? json.length : args.split(/\s+/).length;
      if (n < 2) fail(file, line, kind, 'needs a source and a destination');
      break;
    }
    case 'ARG':
      for (const w of args.split(/\s+/)) {
        const name = w.split('=')[0];
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(file, line, kind, `invalid name ${JSON.stringify(name)}`);
      }
      break;
    case 'ENV':
    case 'LABEL':
      if (!args.includes('=') && kind === 'LABEL') fail(file, line, kind, 'expected key=value');
      if (!args.includes('=') && kind === 'ENV' && !/^\S+\s+\S/.test(args)) fail(file, line, kind, 'expected key=value');
      break;
    case 'HEALTHCHECK':
      healthcheckOf(ins, file);
      break;
    case 'STOPSIGNAL':
    case 'USER':
    case 'WORKDIR':
      break;
    default:
      break;
  }
}

/** An image config's Healthcheck (docker's: durations in nanoseconds, 0 for the default). */
export interface Healthcheck { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number }

/**
 * `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=D --timeout=D --start-period=D --start-interval=D
 * --retries=N] CMD command` (shell form: ["CMD-SHELL", command], run with /bin/sh -c; exec form:
 * ["CMD", arg…]), as docker reads it. Durations are Go's (30s, 1m30s), 0 or at least 1ms.
 */
export function healthcheckOf(ins: Instruction, file: string): Healthcheck {
  const { args, flags, line } = ins;
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(args)!;
  const type = m[1].toUpperCase();
  const rest = (m[2] ?? '').trim();
  if (type === 'NONE') {
    if (rest !== '') fail(file, line, 'HEALTHCHECK', 'NONE takes no arguments');
    if (Object.keys(flags).length) fail(file, line, 'HEALTHCHECK', 'NONE takes no flags');
    return { Test: ['NONE'] };
  }
  if (type !== 'CMD') fail(file, line, 'HEALTHCHECK', `unknown type ${JSON.stringify(m[1])} (use CMD or NONE)`);
  if (rest === '') fail(file, line, 'HEALTHCHECK', 'CMD needs a command');
  const json = parseJsonArray(rest);
  if (json !== undefined && json.length === 0) fail(file, line, 'HEALTHCHECK', 'empty JSON array');
  const hc: Healthcheck = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', rest] };
  for (const [flag, key] of [['interval', 'Interval'], ['timeout', 'Timeout'], ['start-period', 'StartPeriod'], ['start-interval', 'StartInterval']] as const) {
    const v = flags[flag];
    if (v === undefined) continue;
    const ns = parseDurationNs(v);
    if (ns === undefined || ns < 0) fail(file, line, 'HEALTHCHECK', `--${flag}=${v}: expected a duration like 30s, 1m30s or 500ms`);
    if (ns !== 0 && ns < 1e6) fail(file, line, 'HEALTHCHECK', `--${flag}=${v}: must be 0 or at least 1ms`);
    hc[key] = ns;
  }
  if (flags.retries !== undefined) {
    if (!/^\d{1,9}$/.test(flags.retries)) fail(file, line, 'HEALTHCHECK', `--retries=${flags.retries}: expected a whole number >= 0`);
    hc.Retries = Number(flags.retries);
  }
  return hc;
}
