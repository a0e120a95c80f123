// Φ(x), the standard normal CDF, as one wasm SIMD pass: GELU(x) = x·Φ(x). tfjs-wasm's erf costs
// ~17 ns per element and the composite 0.5·(1 + erf(x/√2)) four passes; at TinyViT's stage 0
// that is ~0.4 s per GELU. Max abs error 2e-7 (erf by a clamped rational form).
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { WASM_BASE64 } from './generated/norm_cdf.js';
import {
  kernelsRegistered,
  offsetOf,
  registerModuleKernels,
  wasmExports,
  type WasmBackendLike,
} from './wasm_module.js';

export const NORM_CDF_KERNEL = 'McpNormCdf';

type NormCdf = (input: number, output: number, n: number) => void;

const normCdfKernel = (({ inputs, backend }) => {
  const x = inputs.x as TensorInfo;
  if (x.dtype !== 'float32') throw new Error(`${NORM_CDF_KERNEL}: float32 input required, got ${x.dtype}`);
  const b = backend as unknown as WasmBackendLike;
  const out = b.makeOutput(x.shape.slice(), 'float32');
  const fn = wasmExports(b, WASM_BASE64)!.normcdf as unknown as NormCdf;
  fn(offsetOf(b, x), offsetOf(b, out), tf.util.sizeFromShape(x.shape));
  return out;
}) as KernelFunc;

/** Registers the kernel for wasm when the SIMD module can be instantiated. Idempotent. */
export function registerWasmNormCdf(): void {
  registerModuleKernels(WASM_BASE64, { [NORM_CDF_KERNEL]: normCdfKernel });
}

/** Φ(x) with the fused kernel where registered, else 0.5·(1 + erf(x/√2)). Not differentiable. */
export function normCdf(x: tf.Tensor): tf.Tensor {
  if (kernelsRegistered(NORM_CDF_KERNEL)) return tf.engine().runKernel(NORM_CDF_KERNEL, { x }) as tf.Tensor;
  return tf.tidy(() => tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5));
}
