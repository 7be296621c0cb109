/** The shape of one `pier image` command, and output helpers they share. */
import type { FlagSpec, Parsed } from '../args.ts';
import type { ImageService } from '../../image/index.ts';
import { PierError } from '../../common/errors.ts';

export interface ImageContext {
  svc: ImageService;
}

export interface ImageCommand {
  name: string;
  aliases?: string[];
  usage: string;
  flags: FlagSpec[];
  /** Returns the exit status. */
  run(ctx: ImageContext, p: Parsed): Promise<number> | number;
}

/** The positional arguments, at least `min` of them. */
export function args(p: Parsed, min: number, cmd: string, usage: string): string[] {
  if (p.rest.length < min) throw new PierError(`image ${cmd}: missing argument (usage: pier image ${usage})`);
  return p.rest;
}

/** Sizes the way docker prints them: SI units, three significant digits. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${i === 0 ? v : Number(v.toPrecision(3))}${units[i]}`;
}

/** "3 days ago"-style age of an ISO time. */
export function humanAge(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  const steps: [number, string][] = [[365 * 86400, 'year'], [30 * 86400, 'month'], [7 * 86400, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute']];
  for (const [secs, unit] of steps) {
    const n = Math.floor(s / secs);
    if (n >= 1) return `${n} ${unit}${n > 1 ? 's' : ''} ago`;
  }
  return s < 2 ? 'Less than a second ago' : `${s} seconds ago`;
}

export function shortId(digest: string): string {
  return digest.replace(/^sha(256|512):/, '').slice(0, 12);
}

export function formatFlag(p: Parsed, allowed: string[], cmd: string): string {
  const v = p.flags.get('format');
  const f = typeof v === 'string' ? v : allowed[0];
  if (!allowed.includes(f)) throw new PierError(`image ${cmd}: invalid --format ${JSON.stringify(f)}: use ${allowed.join(' or ')}`);
  return f;
}
