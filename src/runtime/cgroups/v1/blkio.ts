import type { LinuxResources } from '../../spec.ts';
import { Dir, fail, type ControllerImpl } from '../dir.ts';

/** CFQ names the weight files blkio.weight*, BFQ blkio.bfq.weight*; use whichever the kernel has. */
function weightFile(dir: Dir, base: string): string | undefined {
  if (dir.has(`blkio.${base}`)) return `blkio.${base}`;
  if (dir.has(`blkio.bfq.${base}`)) return `blkio.bfq.${base}`;
  return undefined;
}

const THROTTLE = [
  ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
  ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
  ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
  ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
] as const;

export const blkio: ControllerImpl = {
  apply(dir: Dir, r: LinuxResources): void {
    const b = r.blockIO;
    if (!b) return;
    if (b.weight !== undefined && b.weight !== 0) {
      const f = weightFile(dir, 'weight');
      if (!f) fail('blockIO weight', b.weight, `no blkio.weight or blkio.bfq.weight in ${dir.path} (no CFQ/BFQ scheduler)`);
      dir.set(f, b.weight, 'blockIO weight');
    }
    if (b.leafWeight !== undefined && b.leafWeight !== 0) {
      if (!dir.has('blkio.leaf_weight')) fail('blockIO leafWeight', b.leafWeight, `no blkio.leaf_weight in ${dir.path}`);
      dir.set('blkio.leaf_weight', b.leafWeight, 'blockIO leafWeight');
    }
    for (const d of b.weightDevice ?? []) {
      const dev = `${d.major}:${d.minor}`;
      if (d.weight !== undefined && d.weight !== 0) {
        const f = weightFile(dir, 'weight_device');
        if (!f) fail(`blockIO weightDevice ${dev} weight`, d.weight, `no blkio.weight_device or blkio.bfq.weight_device in ${dir.path}`);
        dir.set(f, `${dev} ${d.weight}`, `blockIO weightDevice ${dev} weight`, d.weight);
      }
      if (d.leafWeight !== undefined && d.leafWeight !== 0) {
        if (!dir.has('blkio.leaf_weight_device')) fail(`blockIO weightDevice ${dev} leafWeight`, d.leafWeight, `no blkio.leaf_weight_device in ${dir.path}`);
        dir.set('blkio.leaf_weight_device', `${dev} ${d.leafWeight}`, `blockIO weightDevice ${dev} leafWeight`, d.leafWeight);
      }
    }
    for (const [field, file] of THROTTLE) {
      for (const d of b[field] ?? []) {
        const dev = `${d.major}:${d.minor}`;
        dir.set(file, `${dev} ${d.rate}`, `blockIO ${field} ${dev}`, d.rate);
      }
    }
  },
};
