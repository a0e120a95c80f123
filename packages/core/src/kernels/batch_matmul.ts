// A batched matMul for the wasm backend. tfjs-backend-wasm sends 2-D products to XNNPACK but
// runs batched ones (TinyViT's window attention: 1444 products of 49x32 by 32x49) in a scalar
// loop at ~1.1 GFLOP/s; this SIMD kernel (packages/core/wasm/batch_matmul.wat) runs them at
// ~4-5 GFLOP/s in the same memory.
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { WASM_BASE64 } from './generated/batch_matmul.js';
import { offsetOf, wasmExports, type WasmBackendLike } from './wasm_module.js';

type Bmm = (a: number, b: number, c: number, batch: number, m: number, k: number, n: number) => void;

/** Wraps the registered wasm BatchMatMul: plain same-batch float32 products go to the SIMD kernel. */
export function registerWasmBatchMatMul(): void {
  const existing = tf.getKernel('BatchMatMul', 'wasm');
  if (!existing || (existing.kernelFunc as { simdBatched?: boolean }).simdBatched) return;
  const fallback = existing.kernelFunc;
  const kernelFunc = ((args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const ra = a.shape.length;
    const rb = b.shape.length;
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    const batch = batchA.reduce((p, d) => p * d, 1);
    const plain =
      !transposeA &&
      !transposeB &&
      a.dtype === 'float32' &&
      b.dtype === 'float32' &&
      ra >= 3 &&
      ra === rb &&
      batch > 1 &&
      batchA.every((d, i) => d === batchB[i]) &&
      a.shape[ra - 1] === b.shape[rb - 2];
    const backend = args.backend as unknown as WasmBackendLike;
    const bmm = plain ? (wasmExports(backend, WASM_BASE64)?.bmm as Bmm | undefined) : undefined;
    if (!bmm) return fallback(args);
    const [m, k, n] = [a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]];
    const out = backend.makeOutput([...batchA, m, n], 'float32');
    bmm(offsetOf(backend, a), offsetOf(backend, b), offsetOf(backend, out), batch, m, k, n);
    return out;
  }) as KernelFunc & { simdBatched?: boolean };
  kernelFunc.simdBatched = true;
  const config: KernelConfig = { kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc };
  if (existing.setupFunc) config.setupFunc = existing.setupFunc;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel(config);
}
