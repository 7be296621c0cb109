/** pier build: Containerfile parsing, .dockerignore, and the build executor with its layer cache. */
export { parseContainerfile, healthcheckOf, ContainerfileError, type Healthcheck, type Containerfile, type Instruction, type Stage } from './parser.ts';
export { processWord, processWords, keyValues, type Vars } from './words.ts';
export { DockerIgnore } from './dockerignore.ts';
export { BuildCache, stepKey, type CacheEntry } from './cache.ts';
export { Builder, build, type BuildOptions, type BuildResult, type StepReport, type BuildNetworkMode, type BuildNetworkProvider, type BuildSandbox } from './executor.ts';
