/**
 * The engine's view of an OCI runtime for running containers: pier's runtime library in-process, or
 * any runc-compatible binary through its CLI (`--runtime`). The shim creates and waits; this is
 * everything else the daemon asks of a running container.
 */
import { execFile } from 'node:child_process';
import { PierError, messageOf } from '../../common/errors.ts';
import { Runtime } from '../../runtime/index.ts';

export interface ContainerStats {
  cpuNanos: number;
  memoryUsage: number;
  memoryLimit: number;
  pids: number;
}

export interface RuntimeDriver {
  kill(id: string, signal: string): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  pids(id: string): Promise<number[]>;
  stats(id: string): Promise<ContainerStats>;
  /** Remove what the runtime still keeps of a container (after a lost shim). */
  forceDelete(id: string): Promise<void>;
}

const NO_LIMIT = 2 ** 62;

export class LibraryDriver implements RuntimeDriver {
  private rt: Runtime;
  constructor(root: string) {
    this.rt = new Runtime({ root });
  }
  async kill(id: string, signal: string) { this.rt.kill(id, signal); }
  async pause(id: string) { this.rt.pause(id); }
  async resume(id: string) { this.rt.resume(id); }
  async pids(id: string) { return this.rt.ps(id); }
  async stats(id: string): Promise<ContainerStats> {
    const d = this.rt.stats(id).data;
    const limit = d.memory?.limit;
    return {
      cpuNanos: d.cpu?.usageNs ?? 0,
      memoryUsage: d.memory?.usage ?? 0,
      memoryLimit: limit && limit < NO_LIMIT ? limit : 0,
      pids: d.pids?.current ?? 0,
    };
  }
  async forceDelete(id: string) {
    try { await this.rt.delete(id, true); } catch (err) { if (!/does not exist|not found/.test(messageOf(err))) throw err; }
  }
}

function run(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) {
        const line = stderr.trim().split('\n').pop() || messageOf(err);
        reject(new PierError(`${bin} ${args[2] ?? ''}: ${line}`));
      } else resolve(stdout);
    });
  });
}

/** A runc-compatible binary, driven through its command line. */
export class BinaryDriver implements RuntimeDriver {
  readonly bin: string;
  readonly root: string;
  constructor(bin: string, root: string) {
    this.bin = bin;
    this.root = root;
  }
  private cmd(...args: string[]) { return run(this.bin, ['--root', this.root, ...args]); }
  async kill(id: string, signal: string) { await this.cmd('kill', id, signal); }
  async pause(id: string) { await this.cmd('pause', id); }
  async resume(id: string) { await this.cmd('resume', id); }
  async pids(id: string) { return JSON.parse(await this.cmd('ps', '--format', 'json', id)) as number[]; }
  async stats(id: string): Promise<ContainerStats> {
    const ev = JSON.parse(await this.cmd('events', '--stats', id)) as { data?: { cpu?: { usage?: { total?: number } }; memory?: { usage?: { usage?: number; limit?: number } }; pids?: { current?: number } } };
    const limit = ev.data?.memory?.usage?.limit ?? 0;
    return {
      cpuNanos: ev.data?.cpu?.usage?.total ?? 0,
      memoryUsage: ev.data?.memory?.usage?.usage ?? 0,
      memoryLimit: limit < NO_LIMIT ? limit : 0,
      pids: ev.data?.pids?.current ?? 0,
    };
  }
  async forceDelete(id: string) {
    try { await this.cmd('delete', '--force', id); } catch (err) { if (!/does not exist|not exist/.test(messageOf(err))) throw err; }
  }
}
