/**
 * The health monitor's real ProbeExec (health.ts): the probe runs through the container's shim (the
 * exec op of protocol v2, shim/README.md) — the runtime library's exec for pier's runtime,
 * `<binary> exec` for a runc-compatible one — with the container's process settings (env, cwd,
 * user, which the shim takes from the bundle) and the probe's args, no terminal, stdin from
 * /dev/null, stdout and stderr into one buffer of which the first 4096 bytes are kept (docker keeps
 * no more). At the timeout the process is SIGKILLed (its host pid comes with the shim's reply).
 */
import { Writable } from 'node:stream';
import { signalProcess } from '../../runtime/index.ts';
import type { ContainerInfo } from '../api.ts';
import { ShimClient } from '../shim/index.ts';
import { MAX_OUTPUT, type ProbeExec } from './health.ts';

/** Keeps the first MAX_OUTPUT bytes written to it and drops the rest (a chatty probe must not grow pierd). */
class Head extends Writable {
  private parts: Buffer[] = [];
  private size = 0;
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    if (this.size < MAX_OUTPUT) {
      const part = chunk.subarray(0, MAX_OUTPUT - this.size);
      this.parts.push(Buffer.from(part));
      this.size += part.length;
    }
    cb();
  }
  text(): string { return Buffer.concat(this.parts).toString(); }
}

export function runtimeProbeExec(find: (id: string) => ContainerInfo | undefined, _dirOf?: (id: string) => string): ProbeExec {
  return async (id, cmd, timeoutMs) => {
    const rec = find(id);
    if (!rec) throw new Error(`container ${id.slice(0, 12)} is gone`);
    const shim = await ShimClient.connect(rec.shimSocket);
    let pid = 0;
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; if (pid > 0) signalProcess(pid, 9); }, timeoutMs);
    timer.unref();
    const out = new Head();
    try {
      const r = await shim.exec({ args: cmd, terminal: false }, {
        stdout: out, stderr: out,
        onStarted: (p) => { pid = p; if (timedOut) signalProcess(p, 9); },
      });
      // a probe that could not run is a failed probe (docker: exit 126/127 and the runtime's message)
      return { exitCode: r.exitCode, output: r.error ? `${out.text()}${r.error}\n`.slice(0, MAX_OUTPUT) : out.text() };
    } finally {
      clearTimeout(timer);
      shim.close();
    }
  };
}
