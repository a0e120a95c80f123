export { dice, diceFromCounts } from './dice.js';
export { iou, iouFromCounts } from './iou.js';
export { surfaceDiceAtTolerance } from './nsd.js';
export { robustHausdorff, percentileDistance } from './hausdorff.js';
export { scoreCase, labelStats, axisSpacing, labelSurfaceDistances } from './case.js';
export type { ScoreOptions, CaseScore, LabelStats } from './case.js';
export { toLabelPair, MAX_LABEL } from './labels.js';
export type { ArrayInput, LabelPair } from './labels.js';
export { aggregateByModality, macroAverage } from './aggregate.js';
export type { CaseValues, ModalitySummary, OverallSummary } from './aggregate.js';
export { casesToCsv, formatModalityTable, formatNumber, parseNumber, toJson, CSV_COLUMNS } from './report.js';
export type { CaseRow } from './report.js';
export { evaluateDirs, modalityOfName } from './evaluate.js';
export type { EvaluateOptions, EvaluateResult, CaseFailure } from './evaluate.js';
export { surfaceDistances3d, surfaceDistances2d, unionBox } from './surface/distances.js';
export type { SurfaceDistances, Surface2d, Box, LabelData } from './surface/distances.js';
export { surfaceDiceByProbing3d, probeRadius } from './surface/tolerance.js';
export {
  squaredDistanceTransform,
  distanceTransform,
  envelope1d,
  envelopeBuild,
  EnvelopeScratch,
} from './surface/edt.js';
export { surfaceAreaTable3d, contourLengthTable2d, slabAreaTable2d } from './surface/tables.js';
export { pairwiseSum, npMean, nanMean, nanStd } from './numeric.js';
