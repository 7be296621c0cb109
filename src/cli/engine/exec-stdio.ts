/**
 * The stdio of a process `pier exec` starts without a terminal: pipes this command owns, relayed
 * to and from its own stdio — never its own fds. Handing the caller's fds to the container let a
 * process it left behind keep reading what the user typed into the host shell after `exec`
 * returned, and write escape sequences to the user's terminal (docker and podman relay pipes).
 *
 * The pipes are FIFOs made, opened at both ends and unlinked at once (Node has no pipe(2); a
 * socketpair would break programs that reopen /proc/self/fd/1, see common/fifo.ts). When the
 * exec'd process has exited, `finish()` moves what is already in the output pipes — no more than a
 * pipe can hold, so a left-behind writer cannot keep it going — without waiting for an EOF that a
 * left-behind process holding a write end would put off forever, then closes every end this command
 * has: a left-behind reader gets EOF, a left-behind writer EPIPE.
 */
import { readFileSync, readSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { errnoOf } from '../../common/errors.ts';
import { closeQuietly, fifoDir, inputFifo, outputFifo, removeDir, type FifoEnds } from '../../common/fifo.ts';

export type Slot = number | 'ignore';

/** The most a pipe can hold (the kernel's ceiling for F_SETPIPE_SZ; 1 MiB unless changed). */
function pipeMaxSize(): number {
  try {
    const n = Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8').trim());
    if (Number.isSafeInteger(n) && n > 0) return n;
  } catch { /* no procfs: the default */ }
  return 1024 * 1024;
}

/** Write all of `buf` to fd `to`; false once that fd is gone (EPIPE, EBADF…): the rest is dropped. */
function writeAll(to: number, buf: Uint8Array): boolean {
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(to, buf, off, buf.length - off);
    } catch (err) {
      // a non-blocking stdout (shared with a parent that set it): wait a moment and go on
      if (errnoOf(err) === 'EAGAIN') { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); continue; }
      return false;
    }
  }
  return true;
}

interface Output { fd: number; sock: Socket; to: number; open: boolean }

export class ExecStdio {
  /** stdin, stdout and stderr of the process to start */
  readonly slots: [Slot, Slot, Slot];
  private theirs: number[];
  private outputs: Output[] = [];
  private stdin: Socket | undefined;

  constructor(opts: { stdin: boolean }) {
    const dir = fifoDir();
    const made: FifoEnds[] = [];
    try {
      const input = opts.stdin ? inputFifo(dir, 'stdin') : undefined;
      if (input) made.push(input);
      const out = outputFifo(dir, 'stdout');
      made.push(out);
      const err = outputFifo(dir, 'stderr');
      made.push(err);
      this.slots = [input?.theirs ?? 'ignore', out.theirs, err.theirs];
      this.theirs = made.map((f) => f.theirs);
      for (const [f, to] of [[out, 1], [err, 2]] as const) this.relayOut(f.ours, to);
      if (input) this.relayIn(input.ours);
    } catch (err) {
      for (const f of made) { closeQuietly(f.ours); closeQuietly(f.theirs); }
      throw err;
    } finally {
      removeDir(dir);
    }
  }

  private relayOut(fd: number, to: number): void {
    const o: Output = { fd, to, open: true, sock: new Socket({ fd, readable: true, writable: false }) };
    o.sock.on('data', (chunk: Buffer) => { if (o.to >= 0 && !writeAll(o.to, chunk)) o.to = -1; });
    o.sock.on('error', () => undefined);
    // EOF: every writer closed its end; the socket closes the fd itself
    o.sock.once('end', () => { o.open = false; });
    o.sock.once('close', () => { o.open = false; });
    this.outputs.push(o);
  }

  private relayIn(fd: number): void {
    const sock = new Socket({ fd, readable: false, writable: true });
    this.stdin = sock;
    // EPIPE: the process closed its stdin or exited; what was typed had nowhere to go
    sock.on('error', () => { process.stdin.unpipe(sock); });
    process.stdin.on('error', () => undefined);
    // the end of our stdin becomes the end of theirs
    process.stdin.pipe(sock);
  }

  /** The process has its ends (the runtime spawned it): ours of them go, so EOFs are theirs alone. */
  handedOver(): void {
    for (const fd of this.theirs) closeQuietly(fd);
    this.theirs = [];
  }

  /** Stop relaying stdin and close our end of it: whoever reads the process's stdin gets EOF. */
  closeInput(): void {
    if (!this.stdin) return;
    process.stdin.unpipe(this.stdin);
    process.stdin.destroy();
    this.stdin.destroy();
    this.stdin = undefined;
  }

  /** The process exited: relay what it already wrote, then close every end we hold. */
  finish(): void {
    this.handedOver();
    this.closeInput();
    const limit = pipeMaxSize();
    const buf = Buffer.allocUnsafe(64 * 1024);
    for (const o of this.outputs) {
      // destroyed means the fd is closed already (possibly reused): never read it then
      if (o.open && !o.sock.destroyed) {
        for (let total = 0; total < limit;) {
          let n: number;
          try { n = readSync(o.fd, buf, 0, Math.min(buf.length, limit - total), null); } catch { break; } // EAGAIN: empty
          if (n <= 0) break;
          total += n;
          if (o.to >= 0 && !writeAll(o.to, buf.subarray(0, n))) o.to = -1;
        }
      }
      o.open = false;
      o.sock.destroy();
    }
  }
}
