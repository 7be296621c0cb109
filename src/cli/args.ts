/**
 * runc-style argument parsing: `global flags, command, command flags, positional args`.
 * Accepts `--flag value`, `--flag=value`, single-dash long flags (`-no-subreaper`, as go's flag
 * package allows), short aliases, and `--bool=false`. Unknown flags are an error naming the flag.
 */
import { PierError } from '../common/errors.ts';

export interface FlagSpec {
  /** long name without dashes */
  name: string;
  short?: string;
  /** takes a value; `multi` collects repeats */
  value?: boolean;
  multi?: boolean;
}

export interface Parsed {
  flags: Map<string, string | boolean | string[]>;
  rest: string[];
}

export function parseFlags(argv: string[], specs: FlagSpec[], opts: { stopAtPositional?: boolean; what: string }): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    if (s.short) byName.set(s.short, s);
  }
  const flags = new Map<string, string | boolean | string[]>();
  const rest: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { i++; break; }
    if (!a.startsWith('-') || a === '-') {
      if (opts.stopAtPositional) break;
      rest.push(a);
      continue;
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = byName.get(name);
    if (!spec) throw new PierError(`${opts.what}: unknown flag ${a.split('=')[0]}`);
    let value: string | boolean;
    if (spec.value) {
      if (eq >= 0) value = body.slice(eq + 1);
      else {
        if (i + 1 >= argv.length) throw new PierError(`${opts.what}: flag --${spec.name} needs a value`);
        value = argv[++i];
      }
    } else if (eq >= 0) {
      const v = body.slice(eq + 1);
      if (v !== 'true' && v !== 'false') throw new PierError(`${opts.what}: flag --${spec.name} takes true or false, not ${JSON.stringify(v)}`);
      value = v === 'true';
    } else value = true;
    if (spec.multi) {
      const cur = (flags.get(spec.name) as string[] | undefined) ?? [];
      cur.push(String(value));
      flags.set(spec.name, cur);
    } else flags.set(spec.name, value);
  }
  rest.push(...argv.slice(i));
  return { flags, rest };
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}
export function bool(p: Parsed, name: string): boolean {
  return p.flags.get(name) === true;
}
export function list(p: Parsed, name: string): string[] {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
}
export function int(p: Parsed, name: string, what: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new PierError(`${what}: --${name} must be an integer, not ${JSON.stringify(v)}`);
  return Number(v);
}
