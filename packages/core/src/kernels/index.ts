export { registerWasmBatchMatMul } from './batch_matmul.js';
