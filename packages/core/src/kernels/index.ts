export { registerWasmBatchMatMul } from './batch_matmul.js';
export { registerWasmNormCdf, normCdf, NORM_CDF_KERNEL } from './norm_cdf.js';
export { registerWasmGelu, hasGeluKernels, GELU_KERNEL, GELU_GRAD_KERNEL } from './gelu.js';
export { depthwiseFilterGradWasm } from './depthwise_filter.js';
export { registerWasmBatchNorm, hasBatchNormKernels, BN_TRAIN_KERNEL, BN_GRAD_KERNEL } from './batch_norm.js';
