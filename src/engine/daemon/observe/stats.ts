/** stats: two samples of the runtime's counters 200 ms apart give the CPU share; memory and pids as read. */
import type { StatsInfo } from '../../api.ts';
import { hasProcess } from '../state.ts';
import type { ContainerContext } from '../containers/context.ts';

const SAMPLE_MS = 200;

export async function stats(ctx: ContainerContext, ref: string): Promise<StatsInfo> {
  const rec = ctx.records.get(ref);
  const base: StatsInfo = { id: rec.id, name: rec.name, cpuPercent: 0, cpuNanos: 0, memoryUsage: 0, memoryLimit: 0, pids: 0, netRx: 0, netTx: 0 };
  if (!hasProcess(rec.state.status)) return base;
  const drv = ctx.host.driver(rec);
  const a = await drv.stats(rec.id);
  const t0 = process.hrtime.bigint();
  await ctx.host.clock.sleep(SAMPLE_MS);
  const b = await drv.stats(rec.id).catch(() => a);
  const wall = Number(process.hrtime.bigint() - t0);
  const net = ctx.host.proc.netCounters(rec.state.pid);
  return { ...base, cpuNanos: b.cpuNanos, cpuPercent: wall > 0 ? ((b.cpuNanos - a.cpuNanos) / wall) * 100 : 0, memoryUsage: b.memoryUsage, memoryLimit: b.memoryLimit, pids: b.pids, ...net };
}
