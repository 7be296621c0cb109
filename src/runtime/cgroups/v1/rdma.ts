import type { LinuxResources } from '../../spec.ts';
import { Dir, type ControllerImpl } from '../dir.ts';

/** rdma.max has the same "device hca_handle=N hca_object=M" format on v1 and v2. */
export const rdma: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    for (const [device, lim] of Object.entries(r.rdma ?? {})) {
      const parts: string[] = [];
      if (lim.hcaHandles !== undefined) parts.push(`hca_handle=${lim.hcaHandles}`);
      if (lim.hcaObjects !== undefined) parts.push(`hca_object=${lim.hcaObjects}`);
      if (parts.length === 0) continue;
      dir.set('rdma.max', `${device} ${parts.join(' ')}`, `rdma limit for ${device}`, JSON.stringify(parts.join(' ')));
    }
  },
};
