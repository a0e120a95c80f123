// The gradient of LeakyReLU as one wasm SIMD pass (packages/core/wasm/leaky_relu_grad.wat).
// tfjs's form, where(x > 0, dy, alpha·dy), runs three kernels and makes two map-sized
// temporaries; in the decoder and crop-net blocks that was ~4% of a tiny training step.
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { WASM_BASE64 } from './generated/leaky_relu_grad.js';
import {
  kernelsRegistered,
  offsetOf,
  registerModuleKernels,
  wasmExports,
  type WasmBackendLike,
} from './wasm_module.js';

export const LEAKY_RELU_GRAD_KERNEL = 'McpLeakyReluGrad';

type Grad = (x: number, dy: number, out: number, n: number, alpha: number) => void;

const gradKernel = (({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  if (x.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new Error(`${LEAKY_RELU_GRAD_KERNEL}: float32 inputs required, got ${x.dtype} and ${dy.dtype}`);
  if (!tf.util.arraysEqual(x.shape, dy.shape))
    throw new Error(`${LEAKY_RELU_GRAD_KERNEL}: x ${String(x.shape)} and dy ${String(dy.shape)} differ`);
  const { alpha } = attrs as unknown as { alpha: number };
  const b = backend as unknown as WasmBackendLike;
  const out = b.makeOutput(x.shape.slice(), 'float32');
  const fn = wasmExports(b, WASM_BASE64)!.leaky_relu_grad as unknown as Grad;
  fn(offsetOf(b, x), offsetOf(b, dy), offsetOf(b, out), tf.util.sizeFromShape(x.shape), alpha);
  return out;
}) as KernelFunc;

/** Registers McpLeakyReluGrad for wasm when the SIMD module can be instantiated. Idempotent. */
export function registerWasmLeakyReluGrad(): void {
  registerModuleKernels(WASM_BASE64, { [LEAKY_RELU_GRAD_KERNEL]: gradKernel });
}

/** dL/dx of leakyRelu(x, alpha) for dL/dy: the fused kernel where registered, else tf ops. */
export function leakyReluGrad(x: tf.Tensor, dy: tf.Tensor, alpha: number): tf.Tensor {
  if (x.dtype === 'float32' && dy.dtype === 'float32' && kernelsRegistered(LEAKY_RELU_GRAD_KERNEL))
    return tf.engine().runKernel(LEAKY_RELU_GRAD_KERNEL, { x, dy }, {
      alpha,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
  return tf.tidy(() => tf.where(tf.greater(x, 0), dy, tf.mul(dy, alpha)));
}
