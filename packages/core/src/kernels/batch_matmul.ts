// A batched matMul for the wasm backend. tfjs-backend-wasm sends plain 2-D products to XNNPACK
// but runs batched ones (TinyViT's window attention: 1444 products of 49x32 by 32x49) and every
// product with a transpose flag in a scalar loop at ~1.1 GFLOP/s. This SIMD kernel
// (packages/core/wasm/batch_matmul.wat, 7-16 GFLOP/s) takes both, in the same memory. The flags
// matter because backward passes are made of them: the attention's (dA = dC·Bᵀ, dB = Aᵀ·dC) and
// every weight gradient (xᵀ·dy over all pixels). The kernel packs its operands block by block in
// the order it reads them, so a flag costs nothing more than a plain product.
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { WASM_BASE64 } from './generated/batch_matmul.js';
import { offsetOf, wasmExports, type WasmBackendLike } from './wasm_module.js';

type Bmm = (
  a: number,
  b: number,
  c: number,
  batch: number,
  m: number,
  k: number,
  n: number,
  transposeA: number,
  transposeB: number,
  aStride: number,
  bStride: number,
  scratch: number,
) => void;

interface Plan {
  batchShape: number[];
  batch: number;
  m: number;
  k: number;
  n: number;
  /** Bytes between consecutive matrices of a and b (0: one matrix broadcast to every product). */
  aStride: number;
  bStride: number;
}

/**
 * The kernel's view of a product, or null for what it does not take: other dtypes, mismatched
 * inner sizes, batch shapes that broadcast other than "one matrix against all", and plain 2-D
 * products (XNNPACK's: as fast on the linear layers' shapes).
 */
export function planBatchMatMul(
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): Plan | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const [m, k] = transposeA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [k2, n] = transposeB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  if (k !== k2) return null;
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const sizeA = tf.util.sizeFromShape(batchA);
  const sizeB = tf.util.sizeFromShape(batchB);
  let batchShape: number[];
  try {
    batchShape = tf.broadcast_util.assertAndGetBroadcastShape(batchA, batchB);
  } catch {
    return null;
  }
  const batch = tf.util.sizeFromShape(batchShape);
  if ((sizeA !== batch && sizeA !== 1) || (sizeB !== batch && sizeB !== 1)) return null;
  if (batch === 1 && !transposeA && !transposeB) return null;
  return {
    batchShape,
    batch,
    m,
    k,
    n,
    aStride: sizeA === 1 ? 0 : m * k * 4,
    bStride: sizeB === 1 ? 0 : k * n * 4,
  };
}

/** Runs the kernel on raw heap byte offsets; the scratch is allocated and freed here. */
function runBmm(
  backend: WasmBackendLike,
  bmm: Bmm,
  offsets: [number, number, number],
  batch: number,
  [m, k, n]: [number, number, number],
  transposeA: boolean,
  transposeB: boolean,
  strides: [number, number],
): void {
  // A block of up to 256 steps of K of op(B) (columns padded to 8) and of op(A) (rows padded
  // to 4), and one 4x8 tile for the edges of C.
  const kc = Math.min(k, 256);
  const scratch = backend.makeOutput([kc * (Math.ceil(n / 8) * 8 + Math.ceil(m / 4) * 4) + 32], 'float32');
  try {
    bmm(
      ...offsets,
      batch,
      m,
      k,
      n,
      transposeA ? 1 : 0,
      transposeB ? 1 : 0,
      ...strides,
      offsetOf(backend, scratch),
    );
  } finally {
    backend.disposeData(scratch.dataId, true);
  }
}

/** Whether the SIMD kernel can run on this backend's memory. */
export function simdMatMulAvailable(backend: WasmBackendLike): boolean {
  return !!wasmExports(backend, WASM_BASE64)?.bmm;
}

/**
 * C (m x n) = op(A) · op(B) for operands that start at byte offsets in the wasm heap (views into
 * larger tensors, which no tensor op can express). False when the SIMD kernel is not available.
 */
export function simdMatMulAt(
  backend: WasmBackendLike,
  a: number,
  b: number,
  c: number,
  dims: [number, number, number],
  transposeA: boolean,
  transposeB: boolean,
): boolean {
  const bmm = wasmExports(backend, WASM_BASE64)?.bmm as Bmm | undefined;
  if (!bmm) return false;
  runBmm(backend, bmm, [a, b, c], 1, dims, transposeA, transposeB, [0, 0]);
  return true;
}

/**
 * Whether BatchMatMul on the active backend is this SIMD kernel (products with transpose flags
 * then run at full speed on wasm).
 */
export function hasSimdBatchMatMul(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  const k = tf.getKernel('BatchMatMul', 'wasm');
  if (!(k?.kernelFunc as { simdBatched?: boolean } | undefined)?.simdBatched) return false;
  return wasmExports(tf.backend() as unknown as WasmBackendLike, WASM_BASE64) !== null;
}

/** Wraps the registered wasm BatchMatMul: what `planBatchMatMul` accepts goes to the SIMD kernel. */
export function registerWasmBatchMatMul(): void {
  const existing = tf.getKernel('BatchMatMul', 'wasm');
  if (!existing || (existing.kernelFunc as { simdBatched?: boolean }).simdBatched) return;
  const fallback = existing.kernelFunc;
  const kernelFunc = ((args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const plan = planBatchMatMul(a, b, !!transposeA, !!transposeB);
    const backend = args.backend as unknown as WasmBackendLike;
    const bmm = plan ? (wasmExports(backend, WASM_BASE64)?.bmm as Bmm | undefined) : undefined;
    if (!plan || !bmm) return fallback(args);
    const { batchShape, batch, m, k, n } = plan;
    const out = backend.makeOutput([...batchShape, m, n], 'float32');
    try {
      const offsets: [number, number, number] = [
        offsetOf(backend, a),
        offsetOf(backend, b),
        offsetOf(backend, out),
      ];
      runBmm(backend, bmm, offsets, batch, [m, k, n], !!transposeA, !!transposeB, [
        plan.aStride,
        plan.bStride,
      ]);
    } catch (e) {
      backend.disposeData(out.dataId, true);
      throw e;
    }
    return out;
  }) as KernelFunc & { simdBatched?: boolean };
  kernelFunc.simdBatched = true;
  const config: KernelConfig = { kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc };
  if (existing.setupFunc) config.setupFunc = existing.setupFunc;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel(config);
}
