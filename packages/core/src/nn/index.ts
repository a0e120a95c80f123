export { Module, ModuleList } from './module.js';
export type { StateTensor, LoadReport } from './module.js';
export {
  Linear,
  Conv2d,
  ConvTranspose2d,
  LayerNorm,
  LayerNorm2d,
  BatchNorm2d,
  freezeBatchNorm,
  Embedding,
  conv2dNHWC,
  conv2dBatchNorm,
} from './layers.js';
export type { Conv2dOptions } from './layers.js';
export { gelu, relu, leakyRelu, linear, layerNorm, softmax } from './functional.js';
export { setInitSeed, uniformInit, normalInit } from './init.js';
export { checkpoint, isRecomputing, recomputing } from './checkpoint.js';
export { batchNormTrain, layerNormWithGrad } from './norm.js';
export { variableGradsEager } from './backprop.js';
