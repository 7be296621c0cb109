/**
 * Signal names and numbers for Linux x86_64, parsed the way `runc kill` accepts them:
 * a number, a name with or without SIG, any case, and RTMIN+n / RTMAX-n.
 */
import { PierError } from '../common/errors.ts';

export const SIGNALS: Readonly<Record<string, number>> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11,
  USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21,
  TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

/** glibc keeps 32 and 33 for itself, so userspace's SIGRTMIN is 34; the kernel's _NSIG is 64. */
export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

const CANONICAL = new Map<number, string>();
for (const [name, n] of Object.entries(SIGNALS)) if (!CANONICAL.has(n)) CANONICAL.set(n, name);

export function parseSignal(s: string): number {
  const bad = (): PierError => new PierError(`invalid signal ${JSON.stringify(s)}`);
  if (typeof s !== 'string') throw bad();
  const raw = s.trim();
  if (/^[0-9]+$/.test(raw)) {
    const n = Number(raw);
    if (n < 1 || n > SIGRTMAX) throw bad();
    return n;
  }
  const name = raw.toUpperCase().replace(/^SIG/, '');
  if (Object.hasOwn(SIGNALS, name)) return SIGNALS[name];
  const rt = /^RT(MIN|MAX)(?:([+-])([0-9]+))?$/.exec(name);
  if (rt) {
    const [, base, sign, off] = rt;
    const k = off === undefined ? 0 : Number(off);
    // Only RTMIN+n and RTMAX-n stay within the real-time range.
    if (k !== 0 && ((base === 'MIN' && sign !== '+') || (base === 'MAX' && sign !== '-'))) throw bad();
    const n = base === 'MIN' ? SIGRTMIN + k : SIGRTMAX - k;
    if (n < SIGRTMIN || n > SIGRTMAX) throw bad();
    return n;
  }
  throw bad();
}

/** "SIGKILL", "SIGRTMIN+3", "SIGRTMAX"; glibc-reserved 32 and 33 are "SIG32"/"SIG33". */
export function signalName(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > SIGRTMAX) throw new PierError(`invalid signal number ${n}`);
  const name = CANONICAL.get(n);
  if (name) return `SIG${name}`;
  if (n === SIGRTMAX) return 'SIGRTMAX';
  if (n === SIGRTMIN) return 'SIGRTMIN';
  if (n > SIGRTMIN) return `SIGRTMIN+${n - SIGRTMIN}`;
  return `SIG${n}`;
}
