/**
 * docker's json-file log: one `{"log":"text\n","stream":"stdout","time":"<RFC3339Nano>"}` object per
 * line. JsonLog is the writer the shim uses (line splitting, 16 KiB partial entries, rotation);
 * readLogs is the reader pierd uses for `logs` (tail across rotated files, since/until, follow).
 */
import { closeSync, fstatSync, openSync, renameSync, statSync, unlinkSync, writeSync, watch, existsSync, type FSWatcher } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export type LogStream = 'stdout' | 'stderr';
export interface LogEntry { stream: LogStream; log: string; time: string }

/** docker's line buffer: a line longer than this is written as partial entries of this size. */
export const MAX_LINE = 16 * 1024;

// ---- time ------------------------------------------------------------------------------------

let base = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
let last = 0n;

/**
 * Wall-clock nanoseconds, strictly increasing. Date.now() only has milliseconds, so the monotonic
 * clock supplies the rest; it is re-anchored when it drifts from the wall clock by over 2 ms.
 */
export function nowNs(): bigint {
  const hr = process.hrtime.bigint();
  let ns = base + hr;
  const wall = BigInt(Date.now()) * 1_000_000n;
  if (ns - wall > 2_000_000n || wall - ns > 2_000_000n) {
    base = wall - hr;
    ns = wall;
  }
  if (ns <= last) ns = last + 1n;
  last = ns;
  return ns;
}

/** Go's time.RFC3339Nano in UTC: fraction with trailing zeros trimmed, none when zero. */
export function formatTime(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const iso = new Date(Number(sec) * 1000).toISOString();
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return iso.slice(0, 19) + (frac ? '.' + frac : '') + 'Z';
}

/** Nanoseconds since the epoch of an RFC 3339 time (any fraction length); undefined if unparsable. */
export function parseTime(s: string): bigint | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) {
    const ms = Date.parse(s);
    return Number.isNaN(ms) ? undefined : BigInt(ms) * 1_000_000n;
  }
  const ms = Date.parse(m[1] + m[3]);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

// ---- writer ----------------------------------------------------------------------------------

export interface JsonLogOptions {
  path: string;
  /** bytes; 0 = never rotate */
  maxSize?: number;
  /** files kept in total, the live one included (docker's max-file) */
  maxFiles?: number;
}

/** The path of rotated file n (n = 0 is the live file). */
export function rotatedPath(path: string, n: number): string {
  return n === 0 ? path : `${path}.${n}`;
}

/**
 * Writes entries synchronously with O_APPEND: the shim is the only writer and a write either lands
 * whole or fails, so readers never see a torn line, and order across stdout/stderr is arrival order.
 */
export class JsonLog {
  readonly path: string;
  readonly maxSize: number;
  readonly maxFiles: number;
  private fd: number;
  private size: number;
  private pending: Record<LogStream, Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  /** the first write error, kept so the shim can report it once instead of per chunk */
  error: Error | undefined;

  constructor(opts: JsonLogOptions) {
    this.path = opts.path;
    this.maxSize = Math.max(0, opts.maxSize ?? 0);
    this.maxFiles = Math.max(1, opts.maxFiles ?? 1);
    this.fd = openSync(this.path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  /** Take a chunk of a stream: whole lines become entries, a partial line waits (up to MAX_LINE). */
  write(stream: LogStream, data: Uint8Array, time: string = formatTime(nowNs())): void {
    let buf = this.pending[stream].length ? Buffer.concat([this.pending[stream], data]) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const entries: string[] = [];
    let off = 0;
    for (let nl = buf.indexOf(10, off); nl >= 0; nl = buf.indexOf(10, off)) {
      // a line longer than MAX_LINE is cut into partial entries, as docker does
      while (nl + 1 - off > MAX_LINE) {
        entries.push(entry(stream, buf.subarray(off, off + MAX_LINE), time));
        off += MAX_LINE;
      }
      entries.push(entry(stream, buf.subarray(off, nl + 1), time));
      off = nl + 1;
    }
    while (buf.length - off >= MAX_LINE) {
      entries.push(entry(stream, buf.subarray(off, off + MAX_LINE), time));
      off += MAX_LINE;
    }
    buf = buf.subarray(off);
    // copy: the chunk's backing store may be a large pooled buffer
    this.pending[stream] = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
    this.append(entries);
  }

  /** End of a stream: a trailing partial line becomes an entry of its own (without "\n"). */
  end(stream: LogStream, time: string = formatTime(nowNs())): void {
    const rest = this.pending[stream];
    if (!rest.length) return;
    this.pending[stream] = Buffer.alloc(0);
    this.append([entry(stream, rest, time)]);
  }

  close(): void {
    this.end('stdout');
    this.end('stderr');
    try { closeSync(this.fd); } catch { /* already closed */ }
    this.fd = -1;
  }

  private append(entries: string[]): void {
    if (!entries.length || this.fd < 0) return;
    // One write per batch that fits before the next rotation.
    let batch = '';
    let batchBytes = 0;
    for (const e of entries) {
      const n = Buffer.byteLength(e);
      if (this.maxSize > 0 && this.size + batchBytes > 0 && this.size + batchBytes + n > this.maxSize) {
        this.flush(batch);
        batch = '';
        batchBytes = 0;
        if (this.size > 0) this.rotate();
      }
      batch += e;
      batchBytes += n;
    }
    this.flush(batch);
  }

  private flush(text: string): void {
    if (!text) return;
    const buf = Buffer.from(text);
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
      this.size += buf.length;
    } catch (err) {
      this.error ??= err as Error;
    }
  }

  /** container.log → .1 → .2 …, dropping the oldest; with maxFiles 1 the live file is truncated. */
  private rotate(): void {
    try {
      closeSync(this.fd);
      if (this.maxFiles > 1) {
        try { unlinkSync(rotatedPath(this.path, this.maxFiles - 1)); } catch { /* not there yet */ }
        for (let n = this.maxFiles - 2; n >= 0; n--) {
          try { renameSync(rotatedPath(this.path, n), rotatedPath(this.path, n + 1)); } catch { /* gap */ }
        }
        this.fd = openSync(this.path, 'a', 0o640);
      } else {
        this.fd = openSync(this.path, 'w', 0o640);
      }
      this.size = 0;
    } catch (err) {
      this.error ??= err as Error;
      try { this.fd = openSync(this.path, 'a', 0o640); this.size = fstatSync(this.fd).size; } catch { this.fd = -1; }
    }
  }
}

function entry(stream: LogStream, bytes: Buffer, time: string): string {
  return JSON.stringify({ log: bytes.toString('utf8'), stream, time }) + '\n';
}

// ---- reader ----------------------------------------------------------------------------------

export interface ReadLogsOptions {
  follow?: boolean;
  /** only the last n entries (before since/until filtering, as docker does) */
  tail?: number;
  since?: Date;
  until?: Date;
  /** prefix each entry's log with its time and a space, as `docker logs -t` prints it */
  timestamps?: boolean;
  signal?: AbortSignal;
  /**
   * following ends once this aborts, as at the exit file: what the file holds by then is read, then
   * the reader returns and closes it (pierd aborts it when the container is removed, exit file and all)
   */
  stop?: AbortSignal;
  /** following stops once this file exists (default: exit.json next to the log) */
  exitFile?: string;
  /** how often following re-checks without a file-system event, ms */
  pollMs?: number;
}

/** Rotated files that exist, oldest first (container.log.N … container.log.1), live file excluded. */
export function rotatedFiles(path: string): string[] {
  const out: string[] = [];
  for (let n = 1; n < 100_000 && existsSync(rotatedPath(path, n)); n++) out.unshift(rotatedPath(path, n));
  return out;
}

const CHUNK = 64 * 1024;

/** Complete lines of a file from `pos` up to `end` (exclusive), forwards; returns where it stopped. */
async function readForward(fh: FileHandle, pos: number, end: number, onLine: (line: string) => boolean): Promise<{ pos: number; stopped: boolean }> {
  let rest = Buffer.alloc(0);
  const buf = Buffer.alloc(CHUNK);
  while (pos + rest.length < end) {
    const want = Math.min(CHUNK, end - pos - rest.length);
    const { bytesRead } = await fh.read(buf, 0, want, pos + rest.length);
    if (bytesRead === 0) break;
    let data = rest.length ? Buffer.concat([rest, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
    let off = 0;
    for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, off)) {
      const line = data.subarray(off, nl).toString('utf8');
      off = nl + 1;
      if (!onLine(line)) return { pos: pos + off, stopped: true };
    }
    pos += off;
    data = data.subarray(off);
    rest = Buffer.from(data);
  }
  return { pos, stopped: false };
}

/** The last n lines of a file's first `end` bytes, reading backwards. */
async function readBackward(fh: FileHandle, end: number, n: number): Promise<string[]> {
  const lines: string[] = [];
  let pos = end;
  let rest = Buffer.alloc(0);
  while (pos > 0 && lines.length < n) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, pos);
    let data = Buffer.concat([buf, rest]);
    // everything after the last newline in `data` but before `rest`'s start is a complete line
    let nl = data.lastIndexOf(10, data.length - 1);
    let stop = data.length;
    // the file's final byte is a newline (entries are whole lines): skip it
    if (pos + data.length === end && data[data.length - 1] === 10) { stop = data.length - 1; nl = stop > 0 ? data.lastIndexOf(10, stop - 1) : -1; }
    while (nl >= 0 && lines.length < n) {
      lines.unshift(data.subarray(nl + 1, stop).toString('utf8'));
      stop = nl;
      nl = nl > 0 ? data.lastIndexOf(10, nl - 1) : -1;
    }
    data = data.subarray(0, stop);
    rest = Buffer.from(data);
  }
  if (pos === 0 && rest.length && lines.length < n) lines.unshift(rest.toString('utf8'));
  return lines;
}

async function openOpt(path: string): Promise<{ fh: FileHandle; ino: number; pos: number } | undefined> {
  try {
    const fh = await open(path, 'r');
    return { fh, ino: (await fh.stat()).ino, pos: 0 };
  } catch {
    return undefined;
  }
}

/**
 * Entries of a json-file log, oldest first, across rotated files. With follow it goes on yielding
 * new entries (across rotations) until the exit file appears or `stop` aborts (then drains what is
 * left) or the signal aborts. Every file it opened is closed when it returns.
 */
export async function* readLogs(path: string, opts: ReadLogsOptions = {}): AsyncGenerator<LogEntry> {
  const exitFile = opts.exitFile ?? join(dirname(path), 'exit.json');
  const since = opts.since ? BigInt(opts.since.getTime()) * 1_000_000n : undefined;
  const until = opts.until ? BigInt(opts.until.getTime()) * 1_000_000n : undefined;
  let queue: LogEntry[] = [];
  let done = false;
  /** Parse and filter one line into the queue; false once past `until`. */
  const take = (line: string): boolean => {
    if (!line) return true;
    let e: LogEntry;
    try { e = JSON.parse(line) as LogEntry; } catch { return true; } // a torn or foreign line
    if (typeof e.log !== 'string' || typeof e.time !== 'string') return true;
    if (since !== undefined || until !== undefined) {
      const t = parseTime(e.time);
      if (t !== undefined && since !== undefined && t < since) return true;
      if (t !== undefined && until !== undefined && t > until) { done = true; return false; }
    }
    queue.push({ stream: e.stream === 'stderr' ? 'stderr' : 'stdout', log: opts.timestamps ? `${e.time} ${e.log}` : e.log, time: e.time });
    return true;
  };
  const flushQueue = function* (): Generator<LogEntry> {
    const q = queue;
    queue = [];
    yield* q;
  };

  // The live file is opened first: if it rotates while older files are read, this handle still
  // reads the same bytes and following picks up the new file afterwards.
  let cur = await openOpt(path);
  try {
    const curEnd = cur ? (await cur.fh.stat()).size : 0;
    const older = rotatedFiles(path);
    if (opts.tail !== undefined) {
      let want = Math.max(0, Math.floor(opts.tail));
      const lines: string[] = [];
      const sources: Array<{ path?: string; fh?: FileHandle; end: number }> = [];
      if (cur) sources.push({ fh: cur.fh, end: curEnd });
      for (const p of [...older].reverse()) sources.push({ path: p, end: -1 });
      for (const s of sources) {
        if (want <= 0) break;
        const fh = s.fh ?? await open(s.path!, 'r').catch(() => undefined);
        if (!fh) continue;
        try {
          const end = s.end >= 0 ? s.end : (await fh.stat()).size;
          const got = await readBackward(fh, end, want);
          lines.unshift(...got);
          want -= got.length;
        } finally {
          if (!s.fh) await fh.close();
        }
      }
      for (const l of lines) if (!take(l)) break;
      if (cur) cur.pos = curEnd;
      yield* flushQueue();
    } else {
      for (const p of older) {
        if (done) break;
        const fh = await open(p, 'r').catch(() => undefined);
        if (!fh) continue;
        try {
          const size = (await fh.stat()).size;
          let pos = 0;
          // bounded reads so a big file does not sit in memory as one array of entries
          while (pos < size && !done) {
            const r = await readForward(fh, pos, Math.min(size, pos + 16 * CHUNK), take);
            if (r.pos === pos) { pos = size; break; } // a single line longer than the window: give up on it
            pos = r.pos;
            yield* flushQueue();
          }
        } finally {
          await fh.close();
        }
      }
      if (cur && !done) {
        cur.pos = (await readForward(cur.fh, 0, curEnd, take)).pos;
        yield* flushQueue();
      }
    }
    if (!opts.follow || done || opts.signal?.aborted) return;

    // ---- follow --------------------------------------------------------------------------------
    let wake: (() => void) | undefined;
    const poke = () => { const w = wake; wake = undefined; w?.(); };
    const watchers: FSWatcher[] = [];
    for (const d of new Set([dirname(path), dirname(exitFile)])) {
      try {
        const w = watch(d, { persistent: false }, poke);
        w.on('error', () => undefined);
        watchers.push(w);
      } catch { /* no such dir yet: polling covers it */ }
    }
    opts.signal?.addEventListener('abort', poke, { once: true });
    opts.stop?.addEventListener('abort', poke, { once: true });
    const drain = async function* (): AsyncGenerator<LogEntry> {
      if (!cur) return;
      const size = (await cur.fh.stat()).size;
      if (size < cur.pos) cur.pos = 0; // truncated in place (maxFiles 1)
      const r = await readForward(cur.fh, cur.pos, size, take);
      cur.pos = r.pos;
      yield* flushQueue();
    };
    /** The live path now names another file (rotated or recreated): finish the old one, switch. */
    const switched = async function* (): AsyncGenerator<LogEntry, boolean> {
      let ino: number | undefined;
      try { ino = statSync(path).ino; } catch { return false; }
      if (cur && cur.ino === ino) return false;
      yield* drain();
      await cur?.fh.close();
      cur = await openOpt(path);
      return true;
    };
    try {
      for (;;) {
        if (opts.signal?.aborted || done) return;
        // stop before the drain, as the exit file: what was written before it is all read
        const exited = opts.stop?.aborted || existsSync(exitFile);
        yield* drain();
        if (done) return;
        const moved = yield* switched();
        if (moved) {
          yield* drain();
          if (done) return;
          continue;
        }
        // The shim writes every entry before the exit file: seeing it first, then draining, is complete.
        if (exited) return;
        // a ref'd timer: a `logs -f` process has nothing else keeping its event loop alive
        await new Promise<void>((resolve) => {
          // an abort while the drain above ran found nobody waiting: do not sleep past it
          if (opts.signal?.aborted || opts.stop?.aborted) { resolve(); return; }
          const t = setTimeout(() => { wake = undefined; resolve(); }, opts.pollMs ?? 250);
          wake = () => { clearTimeout(t); resolve(); };
        });
      }
    } finally {
      opts.signal?.removeEventListener('abort', poke);
      opts.stop?.removeEventListener('abort', poke);
      for (const w of watchers) w.close();
    }
  } finally {
    await cur?.fh.close().catch(() => undefined);
  }
}
