import type { LinuxResources } from '../../spec.ts';
import { Dir, type ControllerImpl } from '../dir.ts';

export const netCls: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    const id = r.network?.classID;
    if (id === undefined || id === 0) return;
    dir.set('net_cls.classid', id, 'network classID');
  },
};
