// Φ(x), the standard normal CDF, as one wasm SIMD pass: GELU(x) = x·Φ(x). tfjs-wasm's erf costs
// ~17 ns per element and the composite 0.5·(1 + erf(x/√2)) four passes; at TinyViT's stage 0
// that is ~0.4 s per GELU. Max abs error 2e-7 (erf by a clamped rational form).
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { WASM_BASE64 } from './generated/norm_cdf.js';
import { registerWasmBatchNorm } from './batch_norm.js';
import { registerWasmGelu } from './gelu.js';
import { offsetOf, wasmExports, type WasmBackendLike } from './wasm_module.js';

export const NORM_CDF_KERNEL = 'McpNormCdf';

type NormCdf = (input: number, output: number, n: number) => void;

/**
 * Registers the kernel for wasm when the SIMD module can be instantiated, and with it the
 * fused GELU (./gelu.js) and batch-norm (./batch_norm.js) kernels. Idempotent.
 */
export function registerWasmNormCdf(): void {
  registerWasmGelu();
  registerWasmBatchNorm();
  if (tf.getKernel(NORM_CDF_KERNEL, 'wasm') || tf.getBackend() !== 'wasm') return;
  const backend = tf.backend() as unknown as WasmBackendLike;
  if (!wasmExports(backend, WASM_BASE64)) return;
  const kernelFunc = (({ inputs, backend: be }) => {
    const x = inputs.x as TensorInfo;
    if (x.dtype !== 'float32') throw new Error(`${NORM_CDF_KERNEL}: float32 input required, got ${x.dtype}`);
    const b = be as unknown as WasmBackendLike;
    const out = b.makeOutput(x.shape.slice(), 'float32');
    const fn = wasmExports(b, WASM_BASE64)!.normcdf as unknown as NormCdf;
    fn(
      offsetOf(b, x),
      offsetOf(b, out),
      x.shape.reduce((p, d) => p * d, 1),
    );
    return out;
  }) as KernelFunc;
  tf.registerKernel({ kernelName: NORM_CDF_KERNEL, backendName: 'wasm', kernelFunc });
}

/** Φ(x) with the fused kernel where registered, else 0.5·(1 + erf(x/√2)). Not differentiable. */
export function normCdf(x: tf.Tensor): tf.Tensor {
  if (tf.getKernel(NORM_CDF_KERNEL, tf.getBackend()))
    return tf.engine().runKernel(NORM_CDF_KERNEL, { x }) as tf.Tensor;
  return tf.tidy(() => tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5));
}
