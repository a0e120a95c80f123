export { CLIP_IMAGE_SIZE, CLIP_FEATURE_DIM, pixelsPerImage, checkImageBatch } from './provider.js';
export type { ImageFeatureProvider, TextFeatureProvider } from './provider.js';
export { CLIP_TEXT_STRINGS, clipTextFor } from './modality_text.js';
export type { ClipTextOptions } from './modality_text.js';
export { TextFeatureTable } from './text_table.js';
export type { TextFeatureTableJSON } from './text_table.js';
export { OnnxClipVision, OnnxRunError } from './onnx_vision.js';
export type { OnnxClipVisionOptions } from './onnx_vision.js';
export { loadOrt, openOrtSession } from './onnx_session.js';
export type { OnnxExecutionProvider, OrtModule, OrtSessionOptions } from './onnx_session.js';
export { CachedImageFeatures, cropKey } from './cache.js';
export type { CachedImageFeaturesOptions, ImageFeatureCacheStats } from './cache.js';
export {
  StandinClipVision,
  standinClipWeights,
  standinTextTable,
  standinTextJSON,
  STANDIN_SEED,
  STANDIN_POOL,
  STANDIN_POOLED,
} from './standin_clip.js';
export type { StandinClipWeights } from './standin_clip.js';
