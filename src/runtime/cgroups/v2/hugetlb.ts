import { applyHugetlb } from '../v1/hugetlb.ts';
import type { ControllerImpl } from '../dir.ts';

/** v2 names the limit hugetlb.<size>.max; the page-size checks are shared with v1. */
export const hugetlb: ControllerImpl = {
  apply: (dir, r) => applyHugetlb(dir, r, 'max'),
};
