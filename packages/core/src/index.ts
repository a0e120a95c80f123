export { tf } from './tf.js';
export type { Tensor, Variable } from './tf.js';
export { initBackend, activeBackend } from './backend.js';
export type { BackendName, BackendInfo, InitBackendOptions } from './backend.js';
export * from './common.js';
export * as nn from './nn/index.js';
export {
  Module,
  ModuleList,
  Linear,
  Conv2d,
  ConvTranspose2d,
  LayerNorm,
  LayerNorm2d,
  BatchNorm2d,
  Embedding,
} from './nn/index.js';
export type { StateTensor, LoadReport } from './nn/index.js';
