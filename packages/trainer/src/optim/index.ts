export { AdamW, ADAMW_DEFAULTS } from './adamw.js';
export type {
  AdamWOptions,
  AdamWHyperparameters,
  AdamWParamState,
  AdamWState,
  NamedVariables,
  GradMap,
} from './adamw.js';
export { ReduceLROnPlateau, PLATEAU_DEFAULTS } from './reduce_lr_on_plateau.js';
export type {
  LrHolder,
  PlateauMode,
  ThresholdMode,
  ReduceLROnPlateauOptions,
  ReduceLROnPlateauState,
} from './reduce_lr_on_plateau.js';
export { clipGradNorm, gradNorms } from './clip.js';
export { GradAccumulator } from './accumulate.js';
export { sumRows, sumAll } from './sum.js';
