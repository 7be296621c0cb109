/**
 * Go's duration syntax (`1s`, `1m30s`, `500ms`, `1.5h`), which docker's flags and HEALTHCHECK take,
 * to nanoseconds. A bare number (no unit) is refused as Go's time.ParseDuration refuses it, except 0.
 */
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
const NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 6e10, h: 3.6e12 };

/** Nanoseconds, or undefined when `v` is not a duration. */
export function parseDurationNs(v: string): number | undefined {
  if (v === '0') return 0;
  let s = v;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) { sign = s[0] === '-' ? -1 : 1; s = s.slice(1); }
  if (s === '') return undefined;
  PART.lastIndex = 0;
  let total = 0;
  let at = 0;
  for (let m; (m = PART.exec(s)); at = PART.lastIndex) total += Number(m[1]) * NS[m[2]];
  if (at !== s.length) return undefined;
  return sign * Math.round(total);
}
