import type { ControllerImpl } from '../dir.ts';

/**
 * cgroup v2 controls devices with an eBPF program attached to the cgroup, which pier-runtime does
 * not load: device rules are accepted and NOT enforced on pure v2 (see README). Device nodes in
 * the container are still limited to what the runtime creates in /dev.
 */
export const devices: ControllerImpl = {
  apply(): void {},
};
