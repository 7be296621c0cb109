/**
 * `pier events [--filter K=V]… [--since T] [--until T] [--format json|TEMPLATE]`: pierd's event
 * stream (GET /v1/events), docker's flags and output. pierd parses --since/--until (docker's forms:
 * RFC 3339, unix seconds, a duration like 10m) and checks the filters, so a bad one is its one-line
 * 400. Without --until it runs until interrupted.
 *
 * --format takes `json` or a Go template of the forms docker's own use needs: text with `{{.Path}}`
 * (`{{.Action}}`, `{{.Actor.ID}}`, `{{.Actor.Attributes.name}}`, `{{.Time}}`; Go's field names map to
 * the JSON keys), `{{json .X}}` and `{{index .Actor.Attributes "k"}}`. Anything else (if, range,
 * pipes, other functions) is refused with what is supported; pier has no Go template engine.
 */
import { PierError } from '../../common/errors.ts';
import { writeStdout } from '../../common/log.ts';
import { list, str } from '../args.ts';
import { client, command, parse } from './common.ts';

const USAGE = `usage: pier events [flags]

  -f, --filter K=V    type=container|network|volume, event=die, container=NAME, image=REF,
                      label=K[=V], network=NAME, volume=NAME, scope=local (repeatable)
  --since TIME        replay held events from TIME (RFC 3339, unix seconds, or a duration like 10m)
  --until TIME        stop at TIME (in the past: after the replay)
  --format FORMAT     json, or a template like '{{.Action}} {{.Actor.ID}}'
`;

interface Event {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  timeNano: bigint;
  [k: string]: unknown;
}

/** `--filter k=v …` → docker's filters JSON. */
export function filtersJson(values: string[]): string | undefined {
  const out: Record<string, string[]> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new PierError(`--filter ${JSON.stringify(v)}: expected KEY=VALUE, e.g. type=container`);
    (out[v.slice(0, eq)] ??= []).push(v.slice(eq + 1));
  }
  return values.length ? JSON.stringify(out) : undefined;
}

/** docker's text line: `TIME TYPE ACTION ID (k=v, …)`, the time in UTC with nanoseconds. */
export function textLine(ev: Event): string {
  const ns = ev.timeNano;
  const iso = new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19);
  const attrs = Object.keys(ev.Actor.Attributes).sort().map((k) => `${k}=${ev.Actor.Attributes[k]}`);
  return `${iso}.${String(ns % 1_000_000_000n).padStart(9, '0')}Z ${ev.Type} ${ev.Action} ${ev.Actor.ID}${attrs.length ? ` (${attrs.join(', ')})` : ''}\n`;
}

type Piece = { text: string } | { path: string[]; fn?: 'json' | 'index'; key?: string };

/** A template into pieces, or a one-line error naming what pier's subset lacks. */
export function compileTemplate(t: string): (ev: Event) => string {
  const pieces: Piece[] = [];
  const re = /\{\{-?\s*(.*?)\s*-?\}\}/gs;
  let last = 0;
  for (const m of t.matchAll(re)) {
    pieces.push({ text: t.slice(last, m.index) });
    last = m.index + m[0].length;
    const body = m[1];
    let mm;
    if ((mm = /^(\.[A-Za-z0-9_.]*)$/.exec(body))) pieces.push({ path: pathOf(mm[1]) });
    else if ((mm = /^json\s+(\.[A-Za-z0-9_.]*)$/.exec(body))) pieces.push({ path: pathOf(mm[1]), fn: 'json' });
    else if ((mm = /^index\s+(\.[A-Za-z0-9_.]*)\s+"([^"]*)"$/.exec(body))) pieces.push({ path: pathOf(mm[1]), fn: 'index', key: mm[2] });
    else throw new PierError(`--format: {{${body}}} is beyond what pier supports: {{.Field.Path}}, {{json .X}}, {{index .X "key"}} (or --format json)`);
  }
  pieces.push({ text: t.slice(last) });
  if (/\{\{|\}\}/.test(pieces.filter((p) => 'text' in p).map((p) => (p as { text: string }).text).join(''))) throw new PierError('--format: unbalanced {{ }}');
  return (ev) => pieces.map((p) => {
    if ('text' in p) return p.text;
    const v = lookup(ev, p.path);
    if (p.fn === 'json') return jsonOf(v);
    if (p.fn === 'index') return v && typeof v === 'object' ? show((v as Record<string, unknown>)[p.key!]) : '';
    return show(v);
  }).join('') + '\n';
}

const pathOf = (s: string) => s.split('.').filter(Boolean);

/** Go's exported field names to the JSON keys: Action stays, Time → time, ID → id, a map key as is. */
function lookup(v: unknown, path: string[]): unknown {
  for (const seg of path) {
    if (!v || typeof v !== 'object') return undefined;
    const o = v as Record<string, unknown>;
    const alt = seg === 'ID' ? 'id' : seg[0].toLowerCase() + seg.slice(1);
    v = seg in o ? o[seg] : o[alt];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? `[${v.map(show).join(' ')}]` : `map[${Object.keys(v).sort().map((k) => `${k}:${show((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  return String(v);
}

function jsonOf(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x)) ?? 'null';
}

/** timeNano stays exact (a double would round it). */
function parseEvent(line: string): Event {
  return JSON.parse(line, function (this: unknown, k: string, v: unknown, ctx?: { source?: string }) {
    return k === 'timeNano' && typeof v === 'number' && ctx?.source ? BigInt(ctx.source) : v;
  } as (k: string, v: unknown) => unknown) as Event;
}

export function eventsMain(argv: string[]): Promise<number> {
  return command('events', USAGE, argv, async () => {
    const p = parse(argv, [
      { name: 'filter', short: 'f', value: true, multi: true }, { name: 'since', value: true }, { name: 'until', value: true }, { name: 'format', value: true },
    ], 'events');
    if (p.rest.length) throw new PierError(`pier events takes no arguments, not ${JSON.stringify(p.rest[0])}`);
    const format = str(p, 'format');
    const render = format === undefined || format === '' ? textLine : format === 'json' ? undefined : compileTemplate(format);
    const qs = new URLSearchParams();
    const filters = filtersJson(list(p, 'filter'));
    if (filters) qs.set('filters', filters);
    for (const k of ['since', 'until'] as const) { const v = str(p, k); if (v !== undefined) qs.set(k, v); }
    const res = await client().bytes('GET', `/events?${qs}`);
    res.setEncoding('utf8');
    let buf = '';
    for await (const chunk of res) {
      buf += chunk as string;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line) continue;
        if (line.startsWith('{"error"')) throw new PierError((JSON.parse(line) as { error: string }).error);
        writeStdout(render ? render(parseEvent(line)) : `${line}\n`);
      }
    }
    return 0;
  });
}
