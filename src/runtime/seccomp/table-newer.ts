/**
 * Syscalls added to Linux after the linux-libc-dev (6.1) headers the generated tables come from.
 * Since 5.1 new syscalls get one number on every architecture, so these apply to x86_64, i386 and
 * x32 alike; map_shadow_stack is x86_64-only (it is "64" in syscall_64.tbl and absent on i386).
 * Numbers are from the kernel's arch/x86/entry/syscalls/syscall_{32,64}.tbl.
 */
export const SYSCALLS_NEWER_COMMON: Readonly<Record<string, number>> = {
  cachestat: 451, // 6.5
  fchmodat2: 452, // 6.6
  futex_wake: 454, // 6.7
  futex_wait: 455,
  futex_requeue: 456,
  statmount: 457, // 6.8
  listmount: 458,
  lsm_get_self_attr: 459,
  lsm_set_self_attr: 460,
  lsm_list_modules: 461,
  mseal: 462, // 6.10
  setxattrat: 463, // 6.13
  getxattrat: 464,
  listxattrat: 465,
  removexattrat: 466,
  open_tree_attr: 467, // 6.15
  file_getattr: 468, // 6.17
  file_setattr: 469,
};

export const SYSCALLS_NEWER_X86_64_ONLY: Readonly<Record<string, number>> = {
  map_shadow_stack: 453, // 6.6
};
