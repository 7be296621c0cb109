/**
 * The engine's view of an OCI runtime for running containers: pier's runtime library in-process, or
 * a configured runc-compatible binary through its CLI (`--runtime NAME`). The shim creates and
 * waits; this is everything else the daemon asks of a running container.
 *
 * Which binaries may run containers is the daemon's configuration, never the request's: a runtime
 * is run as root with the container's bundle, so "any path a client names" would be "any program as
 * root" (docker accepts only runtimes named in daemon.json, for the same reason). The table is made
 * once at daemon start (loadRuntimes) and handed to the Engine.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, fstatSync, openSync, readFileSync, closeSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { PierError, errnoOf, messageOf } from '../../common/errors.ts';
import { Type, compile } from '../../common/schema.ts';
import { Runtime } from '../../runtime/index.ts';

/** The built-in runtime's name: pier's runtime library, in the shim's own process. */
export const DEFAULT_RUNTIME = 'pier';

/** A configured runtime: a name, and the binary (none for the built-in). */
export interface RuntimeEntry { name: string; path?: string }

/** Where pierd reads its configuration (docker's daemon.json shape): the system's, then the state root's. */
export function daemonConfigFiles(root: string): string[] {
  return ['/etc/pier/daemon.json', join(root, 'daemon.json')];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const DaemonConfigSchema = Type.Object({
  runtimes: Type.Optional(Type.Record(Type.String(), Type.Object({
    path: Type.String({ pattern: '^/', errorMessage: 'expected an absolute path' }),
  }, { additionalProperties: false }))),
}, { additionalProperties: false });
const daemonConfig = compile(DaemonConfigSchema);

export class Runtimes {
  private byName = new Map<string, RuntimeEntry>();

  constructor(entries: RuntimeEntry[] = []) {
    this.byName.set(DEFAULT_RUNTIME, { name: DEFAULT_RUNTIME });
    for (const e of entries) this.byName.set(e.name, e);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /**
   * The runtime a request or record names: by name; or, as records of an older pier hold it, by the
   * absolute path of a configured runtime. Anything else is undefined.
   */
  find(ref: string | undefined): RuntimeEntry | undefined {
    if (ref === undefined || ref === '') return this.byName.get(DEFAULT_RUNTIME);
    if (!ref.startsWith('/')) return this.byName.get(ref);
    for (const e of this.byName.values()) if (e.path === ref) return e;
    return undefined;
  }

  /** find(), or a one-line refusal that names what was asked and what is known. */
  get(ref: string | undefined, what = 'runtime'): RuntimeEntry {
    const e = this.find(ref);
    if (!e) throw new PierError(`${what}: unknown runtime ${JSON.stringify(ref)} (known: ${this.names().join(', ')}; more go in daemon.json under "runtimes")`);
    return e;
  }
}

/** An executable `name` in one of dirs. */
function findExecutable(name: string, dirs: string[]): string | undefined {
  for (const dir of dirs) {
    if (!isAbsolute(dir)) continue;
    const p = join(dir, name);
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

/**
 * The runtime table, made once at daemon start: pier's built-in runtime; `runc` when a runc binary
 * is on PATH (or in the sbin dirs, where Debian puts it); and every runtime a daemon.json names. A
 * later file's entry replaces an earlier one of the same name; `pier` cannot be replaced.
 * A file that exists but is not valid is an error (the daemon does not start on half a config); so
 * is one that a user other than root (or the daemon's own) could rewrite, since it chooses what runs
 * as root.
 */
export function loadRuntimes(opts: { files: string[]; path?: string }): Runtimes {
  const entries = new Map<string, RuntimeEntry>();
  const dirs = [...(opts.path ?? process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  const runc = findExecutable('runc', dirs);
  if (runc) entries.set('runc', { name: 'runc', path: runc });
  for (const file of opts.files) {
    const text = readConfig(file);
    if (text === undefined) continue;
    let value: unknown;
    try { value = JSON.parse(text); } catch (err) { throw new PierError(`${file}: not valid JSON: ${messageOf(err)}`); }
    const cfg = daemonConfig.check(value, file);
    for (const [name, r] of Object.entries(cfg.runtimes ?? {})) {
      if (!NAME.test(name)) throw new PierError(`${file}: runtime name ${JSON.stringify(name)}: use letters, digits, "_", "." and "-"`);
      if (name === DEFAULT_RUNTIME) throw new PierError(`${file}: runtime name "${DEFAULT_RUNTIME}" is the built-in runtime's`);
      entries.set(name, { name, path: r.path });
    }
  }
  return new Runtimes([...entries.values()]);
}

/** A config file's text; undefined when there is none. Refused when others could have written it. */
function readConfig(file: string): string | undefined {
  let fd: number;
  try { fd = openSync(file, 'r'); } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw new PierError(`${file}: ${messageOf(err)}`);
  }
  try {
    const st = fstatSync(fd);
    const uid = process.geteuid?.() ?? 0;
    if ((st.uid !== 0 && st.uid !== uid) || (st.mode & 0o022) !== 0) {
      throw new PierError(`${file}: must belong to root and not be writable by group or others (it chooses what runs as root)`);
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The runc-compatible binary a container was started with, or undefined for pier's own runtime.
 * A running container is driven by what runs it, even if the daemon's table changed since; a record
 * of an older pier kept only the path, in config.runtime.
 */
export function runtimeBinaryOf(rec: { runtimePath?: string; config: { runtime?: string } }): string | undefined {
  return rec.runtimePath ?? (rec.config.runtime?.startsWith('/') ? rec.config.runtime : undefined);
}

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
