import type { LinuxResources } from '../../spec.ts';
import { Dir, type ControllerImpl } from '../dir.ts';

/** One "ifname priority" write per interface; the kernel keeps a map. */
export const netPrio: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    for (const p of r.network?.priorities ?? []) {
      dir.set('net_prio.ifpriomap', `${p.name} ${p.priority}`, `network priority for ${p.name}`, p.priority);
    }
  },
};
