export { registerWasmBatchMatMul, hasSimdBatchMatMul } from './batch_matmul.js';
export { registerWasmColumnSum } from './column_sum.js';
export { registerWasmBroadcastBinary } from './broadcast_binary.js';
export { registerWasmLeakyReluGrad, leakyReluGrad, LEAKY_RELU_GRAD_KERNEL } from './leaky_relu.js';
export { registerWasmNormCdf, normCdf, NORM_CDF_KERNEL } from './norm_cdf.js';
export { registerWasmGelu, hasGeluKernels, GELU_KERNEL, GELU_GRAD_KERNEL } from './gelu.js';
export { depthwiseFilterGradWasm } from './depthwise_filter.js';
export { registerWasmBatchNorm, hasBatchNormKernels, BN_TRAIN_KERNEL, BN_GRAD_KERNEL } from './batch_norm.js';

import { registerWasmBatchMatMul } from './batch_matmul.js';
import { registerWasmBatchNorm } from './batch_norm.js';
import { registerWasmBroadcastBinary } from './broadcast_binary.js';
import { registerWasmColumnSum } from './column_sum.js';
import { registerWasmGelu } from './gelu.js';
import { registerWasmLeakyReluGrad } from './leaky_relu.js';
import { registerWasmNormCdf } from './norm_cdf.js';

/** Registers every wasm SIMD kernel of this folder (only where the wasm backend is active). */
export function registerWasmKernels(): void {
  registerWasmBatchMatMul();
  registerWasmColumnSum();
  registerWasmBroadcastBinary();
  registerWasmNormCdf();
  registerWasmGelu();
  registerWasmBatchNorm();
  registerWasmLeakyReluGrad();
}
