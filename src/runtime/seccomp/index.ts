/** Public face of the seccomp compiler; see README.md. */
export { compileSeccomp, SECCOMP_ACTIONS, SECCOMP_FILTER_FLAGS, SECCOMP_OPERATORS } from './compile.ts';
export { defaultSeccompProfile, DEFAULT_ALLOWED_SYSCALLS } from './default-profile.ts';
export { ARCH_SECTIONS, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, SECCOMP_ARCHES, X32_SYSCALL_BIT } from './arch.ts';
