export {
  IMAGE_SIZE,
  preprocessImage,
  preprocessImageData,
  normalizeAndPad,
  scaleBox,
  cropContent,
  cropContentData,
  postprocessLogits,
  sigmoidAboveHalf,
  bboxOfMask,
  padBottomRight,
} from './inference.js';
export type {
  Box,
  PreprocessedImage,
  ContentCrop,
  PostprocessOptions,
  PostprocessedMask,
  BboxOptions,
} from './inference.js';
export {
  buildTrainingSample,
  prepareTrainingSlice,
  sampleFromPreparedSlice,
  PreparedSlice,
  rngChoices,
  replayChoices,
  modalityToken,
  ResampleError,
  BOX_SIDES,
} from './training.js';
export type {
  PreparedLabel,
  SampleChoices,
  RecordedChoices,
  BoxSide,
  ResampleReason,
  TrainingSampleOptions,
  TrainingSampleMeta,
  TrainingSample,
} from './training.js';
