/** Layer 3's public API: the registry server (and, alongside, the push/pull client). */
export {
  startRegistry, gcRegistry, parseListen, RegistryError, FilesystemDriver, RegistryStore,
  type RegistryOptions, type RunningRegistry, type StorageDriver, type FileInfo, type ErrorCode,
  type GcOptions, type RegistryGcResult,
} from './server/index.ts';
export * from './client/index.ts';
export type { AuthOptions, TokenKey } from './server/index.ts';
