import type { LinuxResources } from '../../spec.ts';
import { Dir, fail, type ControllerImpl } from '../dir.ts';

/** "2MB", "1GB", "64KB": the size part of the hugetlb file names. */
export function checkPageSize(pageSize: string): void {
  if (!/^[1-9][0-9]*[KMG]B$/.test(pageSize)) fail('hugepage limit pageSize', JSON.stringify(pageSize), 'expected a size like 2MB or 1GB');
}

export function applyHugetlb(dir: Dir, r: LinuxResources, suffix: string): void {
  for (const h of r.hugepageLimits ?? []) {
    checkPageSize(h.pageSize);
    const file = `hugetlb.${h.pageSize}.${suffix}`;
    const what = `hugepage limit ${h.pageSize}`;
    if (!dir.has(file)) fail(what, h.limit, `${file} does not exist in ${dir.path} (page size not supported by this kernel)`);
    dir.set(file, h.limit, what);
  }
}

export const hugetlb: ControllerImpl = {
  apply: (dir, r) => applyHugetlb(dir, r, 'limit_in_bytes'),
};
