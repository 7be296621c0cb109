export { Op, op, encodePlan, describePlan, type PlanOp, type OpName, type Arg } from './ops.ts';
export { buildCreatePlan, mapText, setnsOps, rootfsMountOps, ROOTFS_SUID_DEV_ANNOTATION, ROOTFS_MOUNTS_ANNOTATION, type CreatePlanInput } from './create.ts';
export { buildExecPlan, type ExecPlanInput } from './exec.ts';
export { MOUNT_OPTIONS, mountOps, parseMountOptions, containerPath, propagationFlag, type CgroupMount, type MountContext } from './mounts.ts';
export { deviceOps, deviceList, setsUpDev, DEFAULT_DEVICES } from './devices.ts';
export { processOps, hookOp, type CapMasks, type ResolvedRlimit, type SeccompProgram } from './process.ts';
export { CLONE, MS, NAMESPACES } from './flags.ts';
