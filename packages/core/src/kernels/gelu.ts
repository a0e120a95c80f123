// GELU and its gradient as one wasm SIMD pass each (packages/core/wasm/gelu.wat). The forward
// x·Φ(x) uses the same Φ as McpNormCdf, so its numbers equal x·normCdf(x); the backward
// dy·(Φ(x) + x·φ(x)) needs only x, so training keeps one tensor per GELU instead of two, and
// the backward makes its result without full-size temporaries (at TinyViT's stage 0 the tf-ops
// form needed six 64 MB maps per sample).
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { WASM_BASE64 } from './generated/gelu.js';
import {
  kernelsRegistered,
  offsetOf,
  registerModuleKernels,
  wasmExports,
  type WasmBackendLike,
} from './wasm_module.js';

export const GELU_KERNEL = 'McpGelu';
export const GELU_GRAD_KERNEL = 'McpGeluGrad';

type Gelu = (input: number, output: number, n: number) => void;
type GeluGrad = (x: number, dy: number, output: number, n: number) => void;

function float32(name: string, t: TensorInfo): void {
  if (t.dtype !== 'float32') throw new Error(`${name}: float32 input required, got ${t.dtype}`);
}

const geluKernel = (({ inputs, backend }) => {
  const x = inputs.x as TensorInfo;
  float32(GELU_KERNEL, x);
  const b = backend as unknown as WasmBackendLike;
  const out = b.makeOutput(x.shape.slice(), 'float32');
  const fn = wasmExports(b, WASM_BASE64)!.gelu as unknown as Gelu;
  fn(offsetOf(b, x), offsetOf(b, out), tf.util.sizeFromShape(x.shape));
  return out;
}) as KernelFunc;

const geluGradKernel = (({ inputs, backend }) => {
  const x = inputs.x as TensorInfo;
  const dy = inputs.dy as TensorInfo;
  float32(GELU_GRAD_KERNEL, x);
  float32(GELU_GRAD_KERNEL, dy);
  if (!tf.util.arraysEqual(x.shape, dy.shape))
    throw new Error(`${GELU_GRAD_KERNEL}: x ${String(x.shape)} and dy ${String(dy.shape)} differ in shape`);
  const b = backend as unknown as WasmBackendLike;
  const out = b.makeOutput(x.shape.slice(), 'float32');
  const fn = wasmExports(b, WASM_BASE64)!.gelu_grad as unknown as GeluGrad;
  fn(offsetOf(b, x), offsetOf(b, dy), offsetOf(b, out), tf.util.sizeFromShape(x.shape));
  return out;
}) as KernelFunc;

/** Registers McpGelu and McpGeluGrad for wasm when the SIMD module can be instantiated. Idempotent. */
export function registerWasmGelu(): void {
  registerModuleKernels(WASM_BASE64, { [GELU_KERNEL]: geluKernel, [GELU_GRAD_KERNEL]: geluGradKernel });
}

/** Whether the fused GELU kernels run on the active backend. */
export function hasGeluKernels(): boolean {
  return kernelsRegistered(GELU_KERNEL, GELU_GRAD_KERNEL);
}
