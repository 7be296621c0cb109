/**
 * The CLI's side of a hijacked stream from pierd (`pier exec`, `pier attach`): the connection
 * carries the shim protocol's frames (engine/shim/protocol.ts, docker's 8-byte header). Output
 * frames go to this command's stdout/stderr, this command's stdin goes out as STDIN frames (its end
 * as STDIN_EOF), terminal size changes as RESIZE frames, and the EXIT frame ends it.
 *
 * The process in the container never gets this command's fds: it has pipes (or a pty) the
 * container's shim made and closes once the process is gone, so a process it left behind can
 * neither read what is typed here after the command returned nor write to this terminal. This
 * command stops relaying at the EXIT frame and lets go of its stdin then.
 */
import type { Socket } from 'node:net';
import { FRAME, FrameReader, encodeFrame, jsonFrame } from '../../engine/index.ts';

export interface StreamOptions {
  /** relay this command's stdin */
  stdin: boolean;
  /** the process has a terminal: raw mode here while stdin is relayed, and resizes */
  tty: boolean;
  /** send the terminal's size once at the start (attach; exec passes it with the start) */
  initialResize?: boolean;
}

/** What the EXIT frame said (exec: ExecExit; attach: the container's ExitStatus), undefined when the stream ended without one. */
export type StreamEnd = { exitCode: number; error?: string } | undefined;

export function relayStream(sock: Socket, opts: StreamOptions): Promise<StreamEnd> {
  const stdin = process.stdin;
  const cleanups: Array<() => void> = [];
  const send = (buf: Buffer) => { if (!sock.destroyed && sock.writable) sock.write(buf); };
  if (opts.tty && process.stdout.isTTY) {
    const resize = () => send(jsonFrame(FRAME.RESIZE, { cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 }));
    process.stdout.on('resize', resize);
    cleanups.push(() => process.stdout.off('resize', resize));
    if (opts.initialResize) resize();
  }
  if (opts.stdin) {
    if (opts.tty && stdin.isTTY) {
      // keys go to the container's terminal as typed (^C included), as docker exec -it does
      stdin.setRawMode(true);
      cleanups.push(() => stdin.setRawMode(false));
    }
    const onData = (d: Buffer) => {
      if (!sock.write(encodeFrame(FRAME.STDIN, d))) { stdin.pause(); sock.once('drain', () => stdin.resume()); }
    };
    const onEnd = () => send(encodeFrame(FRAME.STDIN_EOF));
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    stdin.on('error', () => undefined);
    stdin.resume();
    cleanups.push(() => { stdin.off('data', onData); stdin.off('end', onEnd); stdin.pause(); stdin.destroy(); });
  }
  return new Promise<StreamEnd>((resolve) => {
    const reader = new FrameReader();
    let end: StreamEnd;
    const write = (to: NodeJS.WriteStream, payload: Buffer) => {
      // a slow terminal or file holds the stream (and so the process), it does not lose output
      if (!to.write(payload)) { sock.pause(); to.once('drain', () => sock.resume()); }
    };
    sock.on('data', (chunk: Buffer) => {
      let frames;
      try { frames = reader.push(chunk); } catch { sock.destroy(); return; }
      for (const f of frames) {
        if (!('type' in f)) continue;
        if (f.type === FRAME.STDOUT) write(process.stdout, f.payload);
        else if (f.type === FRAME.STDERR) write(process.stderr, f.payload);
        else if (f.type === FRAME.EXIT) {
          try { end = JSON.parse(f.payload.toString('utf8')) as StreamEnd; } catch { end = { exitCode: 1, error: 'pierd sent an exit record that is not JSON' }; }
          sock.destroy();
        }
      }
    });
    sock.on('error', () => undefined);
    sock.once('close', () => {
      for (const c of cleanups.reverse()) c();
      resolve(end);
    });
    sock.resume();
  });
}
