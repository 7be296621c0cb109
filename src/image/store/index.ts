export * from './content.ts';
export * from './refs.ts';
export * from './gc.ts';
export * from './walk.ts';
export { withLock, pidAlive } from './lock.ts';
