export { registerWasmBatchMatMul } from './batch_matmul.js';
export { registerWasmNormCdf, normCdf, NORM_CDF_KERNEL } from './norm_cdf.js';
