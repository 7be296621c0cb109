/**
 * pier's isolation layer as a library: the same operations `pier-runtime` exposes on its command
 * line, callable in-process (the engine uses this to skip a CLI start per container).
 *
 *   const rt = new Runtime({ root: '/run/pier-runtime' });
 *   await rt.create({ id: 'c1', bundle: '/path/to/bundle' });
 *   await rt.start('c1');
 */
import { Logger } from '../common/log.ts';
import { ContainerStore, type ContainerRecord } from './state.ts';
import type { RuntimeContext } from './container/context.ts';
import { create, type CreateOptions } from './container/create.ts';
import { start } from './container/start.ts';
import { kill } from './container/kill.ts';
import { deleteContainer } from './container/delete.ts';
import { exec, type ExecOptions } from './container/exec.ts';
import { run, type RunOptions } from './container/run.ts';
import { pause, resume } from './container/pause.ts';
import { ps } from './container/ps.ts';
import { update } from './container/update.ts';
import { stats } from './container/events.ts';
import { features } from './container/features.ts';
import { exitStatus } from './container/security.ts';
import { defaultSpec } from './container/spec.ts';
import type { LinuxResources, State } from './spec.ts';

export const DEFAULT_ROOT = '/run/pier-runtime';

export interface Foreground {
  /** the init's host pid */
  pid: number;
  /** the container's exit status, once it has exited */
  exit: Promise<number>;
  /** why the init failed after it was set up (e.g. exec), if it said so */
  lastError(): string | undefined;
  /** end pier-helper (and with it a created, never started init) */
  killHelper(): void;
}

export class Runtime {
  readonly ctx: RuntimeContext;
  constructor(opts: { root?: string; log?: Logger } = {}) {
    this.ctx = { store: new ContainerStore(opts.root ?? DEFAULT_ROOT), log: opts.log ?? new Logger() };
  }

  /** Create a container; resolves once its init waits for start. Returns the init's host pid. */
  async create(opts: Omit<CreateOptions, 'mode'>): Promise<number> {
    const { record } = await create(this.ctx, { ...opts, mode: 'detach' });
    return record.pid;
  }
  start(id: string): Promise<void> { return start(this.ctx, id); }
  run(opts: RunOptions): Promise<number> { return run(this.ctx, opts); }

  /**
   * Create with pier-helper staying the init's parent (what `run` does in the foreground), for a
   * supervisor that must know the pid before the exit and start later (the engine's shim): the
   * returned `exit` settles with the container's status (128+n for signal n); `start(id)` starts it.
   */
  async createForeground(opts: Omit<CreateOptions, 'mode'>): Promise<Foreground> {
    const { record, helper } = await create(this.ctx, { ...opts, mode: 'wait' });
    return {
      pid: record.pid,
      exit: helper.exit.then(({ code, signal }) => exitStatus(code, signal)),
      lastError: () => helper.lastError(),
      killHelper: () => helper.kill(),
    };
  }
  kill(id: string, signal?: string, all?: boolean): void { kill(this.ctx, id, signal, all); }
  delete(id: string, force?: boolean): Promise<void> { return deleteContainer(this.ctx, id, force); }
  exec(id: string, opts: ExecOptions): Promise<{ pid: number; exitCode?: number }> { return exec(this.ctx, id, opts); }
  pause(id: string): void { pause(this.ctx, id); }
  resume(id: string): void { resume(this.ctx, id); }
  ps(id: string): number[] { return ps(this.ctx, id); }
  update(id: string, resources: LinuxResources): void { update(this.ctx, id, resources); }
  stats(id: string) { return stats(this.ctx, id); }

  state(id: string): State {
    return this.ctx.store.stateOf(this.ctx.store.load(id));
  }
  list(): State[] {
    return this.ctx.store.ids().flatMap((id) => {
      const rec = this.ctx.store.tryLoad(id);
      return rec ? [this.ctx.store.stateOf(rec)] : [];
    });
  }
  record(id: string): ContainerRecord {
    return this.ctx.store.load(id);
  }
}

export { defaultSpec, features };
export { validateSpec, validateId } from './validate.ts';
export { ROOTFS_SUID_DEV_ANNOTATION, ROOTFS_MOUNTS_ANNOTATION } from './plan/create.ts';
export type { Spec, State, Process, LinuxResources, Mount, Hook } from './spec.ts';
export type { CreateOptions, ExecOptions, RunOptions };
export { PierError } from '../common/errors.ts';
export { OCI_VERSION } from './spec.ts';
export { DOCKER_DEFAULT_CAPS, CAP_NAMES } from './caps.ts';
export { parseSignal } from './signals.ts';
export { signalProcess } from './proc.ts';
export { exitStatus };
export { oomCounterOf, readOomCounter, type OomCounter } from './cgroups/oom.ts';
