// Training-mode batch normalisation as wasm SIMD passes (packages/core/wasm/batch_norm.wat):
// the forward makes x̂ and y with no other map-sized tensor (the tf-ops form makes four), the
// backward makes dx alone (the tf-ops form makes five), and the per-channel sums are accumulated
// in float64 (tfjs's average pool sums in float32: ~2e-6 relative error in the variance).
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { WASM_BASE64 } from './generated/batch_norm.js';
import {
  kernelsRegistered,
  offsetOf,
  registerModuleKernels,
  wasmExports,
  type WasmBackendLike,
} from './wasm_module.js';

export const BN_TRAIN_KERNEL = 'McpBatchNormTrain';
export const BN_GRAD_KERNEL = 'McpBatchNormGrad';

type Forward = (
  x: number,
  rows: number,
  c: number,
  w: number,
  b: number,
  eps: number,
  acc: number,
  stats: number,
  xhat: number,
  y: number,
) => void;
type Backward = (
  dy: number,
  xhat: number,
  rows: number,
  c: number,
  k: number,
  acc: number,
  sums: number,
  dx: number,
) => void;

function check(name: string, map: TensorInfo, perChannel: TensorInfo[]): [number, number] {
  const all = [map, ...perChannel];
  const bad = all.find((t) => t.dtype !== 'float32');
  if (bad) throw new Error(`${name}: float32 inputs required, got ${bad.dtype}`);
  const c = map.shape[map.shape.length - 1] ?? 1;
  for (const t of perChannel)
    if (tf.util.sizeFromShape(t.shape) !== c)
      throw new Error(`${name}: per-channel input of shape ${String(t.shape)} for ${c} channels`);
  return [tf.util.sizeFromShape(map.shape) / c, c];
}

/** Runs `f` with a float32 scratch buffer of `n` elements, freed afterwards. */
function withScratch<T>(b: WasmBackendLike, n: number, f: (offset: number) => T): T {
  const scratch = b.makeOutput([n], 'float32');
  try {
    return f(offsetOf(b, scratch));
  } finally {
    b.disposeData(scratch.dataId, true);
  }
}

/**
 * Inputs x (…, C), weight (C), bias (C); attrs { eps }. Outputs y, x̂ (both x's shape) and
 * stats (3, C): the batch mean, the biased variance and 1/√(variance + eps).
 */
const forwardKernel = (({ inputs, backend, attrs }) => {
  const { x, weight, bias } = inputs as { x: TensorInfo; weight: TensorInfo; bias: TensorInfo };
  const [rows, c] = check(BN_TRAIN_KERNEL, x, [weight, bias]);
  const { eps } = attrs as unknown as { eps: number };
  const b = backend as unknown as WasmBackendLike;
  const y = b.makeOutput(x.shape.slice(), 'float32');
  const xhat = b.makeOutput(x.shape.slice(), 'float32');
  const stats = b.makeOutput([3, c], 'float32');
  const fn = wasmExports(b, WASM_BASE64)!.bn_forward as unknown as Forward;
  withScratch(b, 4 * c, (acc) =>
    fn(
      offsetOf(b, x),
      rows,
      c,
      offsetOf(b, weight),
      offsetOf(b, bias),
      eps,
      acc,
      offsetOf(b, stats),
      offsetOf(b, xhat),
      offsetOf(b, y),
    ),
  );
  return [y, xhat, stats];
}) as KernelFunc;

/**
 * Inputs dy and x̂ (…, C), scale (C) = γ/σ. Outputs dx (dy's shape) and sums (2, C): Σ dy (the
 * bias gradient) and Σ dy·x̂ (the weight gradient) over every axis but the last.
 */
const backwardKernel = (({ inputs, backend }) => {
  const { dy, xhat, scale } = inputs as { dy: TensorInfo; xhat: TensorInfo; scale: TensorInfo };
  const [rows, c] = check(BN_GRAD_KERNEL, dy, [scale]);
  if (!tf.util.arraysEqual(dy.shape, xhat.shape) || xhat.dtype !== 'float32')
    throw new Error(`${BN_GRAD_KERNEL}: dy ${String(dy.shape)} and x̂ ${String(xhat.shape)} differ`);
  const b = backend as unknown as WasmBackendLike;
  const dx = b.makeOutput(dy.shape.slice(), 'float32');
  const sums = b.makeOutput([2, c], 'float32');
  const fn = wasmExports(b, WASM_BASE64)!.bn_backward as unknown as Backward;
  withScratch(b, 6 * c, (acc) =>
    fn(
      offsetOf(b, dy),
      offsetOf(b, xhat),
      rows,
      c,
      offsetOf(b, scale),
      acc,
      offsetOf(b, sums),
      offsetOf(b, dx),
    ),
  );
  return [dx, sums];
}) as KernelFunc;

/** Registers the two kernels for wasm when the SIMD module can be instantiated. Idempotent. */
export function registerWasmBatchNorm(): void {
  registerModuleKernels(WASM_BASE64, { [BN_TRAIN_KERNEL]: forwardKernel, [BN_GRAD_KERNEL]: backwardKernel });
}

/** Whether the fused batch-norm kernels run on the active backend. */
export function hasBatchNormKernels(): boolean {
  return kernelsRegistered(BN_TRAIN_KERNEL, BN_GRAD_KERNEL);
}

/** y, x̂ and the per-channel mean, biased variance and 1/σ through the fused kernel. */
export function batchNormTrainKernel(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor,
  eps: number,
): { y: tf.Tensor; xhat: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor; invStd: tf.Tensor } {
  const [y, xhat, stats] = tf
    .engine()
    .runKernel(BN_TRAIN_KERNEL, { x, weight, bias }, { eps } as unknown as NamedAttrMap) as tf.Tensor[];
  const [mean, variance, invStd] = tf.unstack(stats);
  stats.dispose();
  return { y, xhat, mean, variance, invStd };
}

/** dx and the weight and bias gradients through the fused kernel; scale = γ/σ. */
export function batchNormGradKernel(
  dy: tf.Tensor,
  xhat: tf.Tensor,
  scale: tf.Tensor,
): { dx: tf.Tensor; dWeight: tf.Tensor; dBias: tf.Tensor } {
  const [dx, sums] = tf.engine().runKernel(BN_GRAD_KERNEL, { dy, xhat, scale }) as tf.Tensor[];
  const [dBias, dWeight] = tf.unstack(sums);
  sums.dispose();
  return { dx, dWeight, dBias };
}
