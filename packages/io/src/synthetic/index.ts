/** Synthetic multi-modality cases for demos and tests (see the package README). */
export { SYNTHETIC_KINDS, SYNTHETIC_DIMS, MIN_TARGET_PIXELS, type SyntheticKind } from './types.js';
export {
  syntheticCase,
  syntheticCaseName,
  SYNTHETIC_TARGETS,
  type SyntheticCase,
  type SyntheticCaseOptions,
} from './case.js';
export { writeSyntheticDataset, type SyntheticDataset, type SyntheticDatasetOptions } from './dataset.js';
export { boxFillDice, targetStats, type TargetStats } from './labels.js';
