/**
 * Transfer progress: on a TTY, one redrawn bar per blob; otherwise one line per blob when it is
 * done (`<short digest>: pushed 1.1 MB`).
 */
import { writeStdout } from '../../common/log.ts';

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do { v /= 1000; i++; } while (v >= 1000 && i < units.length - 1);
  return `${v.toFixed(1)} ${units[i]}`;
}

export function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

interface Row {
  digest: string;
  size: number;
  done: number;
  status: string;
}

export class Progress {
  private rows: Row[] = [];
  private drawn = 0;
  private readonly tty: boolean;
  private readonly quiet: boolean;
  private readonly out: (s: string) => void;

  constructor(opts: { tty?: boolean; quiet?: boolean; out?: (s: string) => void } = {}) {
    this.tty = opts.tty ?? false;
    this.quiet = opts.quiet ?? false;
    this.out = opts.out ?? writeStdout;
  }

  start(digest: string, size: number, status: string): void {
    this.rows.push({ digest, size, done: 0, status });
    this.redraw();
  }

  update(digest: string, done: number): void {
    const r = this.rows.find((x) => x.digest === digest);
    if (!r) return;
    r.done = done;
    this.redraw();
  }

  /** A blob is done: `status` is the word for what happened (pushed, exists, mounted from x, pulled). */
  finish(digest: string, status: string, size: number): void {
    const r = this.rows.find((x) => x.digest === digest);
    if (r) { r.done = r.size; r.status = status; }
    else this.rows.push({ digest, size, done: size, status });
    if (this.quiet) return;
    if (this.tty) this.redraw();
    else this.out(`${shortDigest(digest)}: ${status} ${formatBytes(size)}\n`);
  }

  line(text: string): void {
    if (this.quiet) return;
    this.out(text + '\n');
    if (this.tty) this.drawn = 0;
  }

  private redraw(): void {
    if (!this.tty || this.quiet) return;
    let s = this.drawn ? `\x1b[${this.drawn}A` : '';
    for (const r of this.rows) {
      const frac = r.size ? Math.min(1, r.done / r.size) : 1;
      const w = 30;
      const fill = Math.round(frac * w);
      s += `\x1b[2K${shortDigest(r.digest)}: ${r.status.padEnd(10)} [${'='.repeat(fill)}${' '.repeat(w - fill)}] ${formatBytes(r.done)}/${formatBytes(r.size)}\n`;
    }
    this.drawn = this.rows.length;
    this.out(s);
  }
}
