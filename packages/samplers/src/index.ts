export * from './case_index.js';
export * from './samplers.js';
export * from './volume_cache.js';
export * from './loader.js';
export { sampleSeed, runBuildJob, sampleTransferList } from './build_job.js';
export type { BuildJob, BuildResult } from './build_job.js';
export { PreparedSliceCache } from './prepared_cache.js';
export type { PreparedCacheStats } from './prepared_cache.js';
