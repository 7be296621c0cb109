export * from './types.ts';
export * from './validate.ts';
export * from './reference.ts';
export * from './platform.ts';
