import { appendFileSync, writeSync } from 'node:fs';

/**
 * A logger that writes the way runc's callers read it:
 * - text: `time="…" level=error msg="…"` lines (logrus style) to the log file, or stderr;
 * - json: one `{"level","msg","time"}` object per line (podman reads the whole file as one object
 *   on failure, containerd keeps the last error line).
 * It writes with fs.writeSync on fd 2 rather than process.stderr: touching the stream object would
 * switch the shared file description to O_NONBLOCK, which leaks into containers (nodejs/node#42826).
 */
export type LogFormat = 'text' | 'json';
export type Level = 'debug' | 'info' | 'warning' | 'error';

export class Logger {
  file: string | undefined;
  format: LogFormat;
  debugEnabled: boolean;
  constructor(opts: { file?: string; format?: LogFormat; debug?: boolean } = {}) {
    this.file = opts.file;
    this.format = opts.format ?? 'text';
    this.debugEnabled = opts.debug ?? false;
  }

  line(level: Level, msg: string): string {
    const time = new Date().toISOString();
    if (this.format === 'json') return JSON.stringify({ level, msg, time }) + '\n';
    return `time="${time}" level=${level} msg=${JSON.stringify(msg)}\n`;
  }

  write(level: Level, msg: string): void {
    if (level === 'debug' && !this.debugEnabled) return;
    const text = this.line(level, msg);
    if (this.file) {
      try { appendFileSync(this.file, text); return; } catch { /* fall back to stderr */ }
    }
    writeStderr(text);
  }

  debug(msg: string): void { this.write('debug', msg); }
  info(msg: string): void { this.write('info', msg); }
  warn(msg: string): void { this.write('warning', msg); }
  error(msg: string): void { this.write('error', msg); }
}

/** Write to fd 2 without creating process.stderr (see the class comment). */
export function writeStderr(text: string): void {
  try { writeSync(2, text); } catch { /* stderr closed: nothing to do */ }
}

/** Write to fd 1 without creating process.stdout. */
export function writeStdout(text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try { off += writeSync(1, buf, off, buf.length - off); } catch (err) {
      if ((err as { code?: string }).code === 'EAGAIN') continue;
      throw err;
    }
  }
}
