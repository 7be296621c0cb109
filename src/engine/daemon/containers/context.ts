/**
 * What every container operation (one file each in this folder) is given: the records, the host
 * behind its interfaces, the configuration, and the way to tell the world (events) and the restart
 * manager (reconcile) that something changed. Made once by engine.ts.
 */
import type { Logger } from '../../../common/log.ts';
import type { ContainerInfo, PodRecord } from '../../api.ts';
import type { EnginePaths } from '../../paths.ts';
import type { VolumeManager } from '../../volume/index.ts';
import type { EngineConfig } from '../config.ts';
import type { EngineEvent } from '../events.ts';
import type { EngineHost } from '../host.ts';
import type { Runtimes } from '../runtime.ts';
import type { ContainerRecords } from '../store.ts';
import type { LiveTable } from './live.ts';

export interface ContainerContext {
  paths: EnginePaths;
  log: Logger;
  config: EngineConfig;
  records: ContainerRecords;
  host: EngineHost;
  volumes: VolumeManager;
  runtimes: Runtimes;
  live: LiveTable;
  emit(e: EngineEvent): void;
  /** Ask the restart manager to look at this container again (level-triggered: it reads the record). */
  reconcile(id: string): void;
  /** The daemon is stopping: watchers stop following. */
  closed(): boolean;
  /** A pod's record by id (the pods service; absent in engines without one). */
  pods?(id: string): PodRecord | undefined;
  /** Before a user's start takes the container's lock (a pod member's pod is started first). */
  beforeStart?(rec: ContainerInfo): Promise<void>;
}

/** ms since t (the trace of create/start/exit steps). */
export function stamp(): () => number {
  const t = process.hrtime.bigint();
  return () => Number(process.hrtime.bigint() - t) / 1e6;
}

export function trace(ctx: ContainerContext, id: string, what: string, ms: number): void {
  if (ctx.config.trace) ctx.log.info(`trace ${id.slice(0, 12)} ${what} ${ms.toFixed(1)} ms`);
}

/** The event of a change, with the record's revision and image (docker's attributes come from it). */
export function eventOf(type: string, rec: { id: string; name: string; image: string; revision: number }, extra: Partial<EngineEvent> = {}): EngineEvent {
  return { type, id: rec.id, name: rec.name, image: rec.image, revision: rec.revision, ...extra };
}
