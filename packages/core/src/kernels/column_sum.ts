// Sum over leading axes for the wasm backend. tfjs-backend-wasm reduces innermost axes only, so
// a sum over the leading ones (every bias gradient: dy (rows, C) summed to (C); the attention
// bias gradient summed over windows) first transposes the whole input, at several times the cost
// of the sum itself. This kernel (packages/core/wasm/column_sum.wat) sums the rows in place, in
// the same order.
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { WASM_BASE64 } from './generated/column_sum.js';
import { offsetOf, wasmExports, type WasmBackendLike } from './wasm_module.js';

type ColumnSum = (x: number, out: number, rows: number, cols: number) => void;

export interface LeadingSum {
  /** Number of leading axes summed over. */
  axes: number;
  rows: number;
  cols: number;
}

/** A float32 sum over a leading run of axes that keeps at least one axis (and 2+ values), else null. */
export function leadingAxesSum(x: TensorInfo, axis: number | number[]): LeadingSum | null {
  if (x.dtype !== 'float32') return null;
  const rank = x.shape.length;
  const sorted = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
  if (sorted.length === 0 || sorted.length >= rank || sorted.some((a, i) => a !== i)) return null;
  const rows = tf.util.sizeFromShape(x.shape.slice(0, sorted.length));
  const cols = tf.util.sizeFromShape(x.shape.slice(sorted.length));
  return cols > 1 && rows > 0 ? { axes: sorted.length, rows, cols } : null;
}

/** Wraps the registered wasm Sum: leading-axes float32 sums go to the SIMD kernel. */
export function registerWasmColumnSum(): void {
  const existing = tf.getKernel('Sum', 'wasm');
  if (!existing || (existing.kernelFunc as { columnSum?: boolean }).columnSum) return;
  const fallback = existing.kernelFunc;
  const kernelFunc = ((args) => {
    const x = args.inputs.x as TensorInfo;
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const plan = leadingAxesSum(x, axis);
    const backend = args.backend as unknown as WasmBackendLike;
    const fn = plan ? (wasmExports(backend, WASM_BASE64)?.column_sum as ColumnSum | undefined) : undefined;
    if (!plan || !fn) return fallback(args);
    const kept = x.shape.slice(plan.axes);
    const out = backend.makeOutput(
      keepDims ? [...x.shape.slice(0, plan.axes).fill(1), ...kept] : kept,
      'float32',
    );
    fn(offsetOf(backend, x), offsetOf(backend, out), plan.rows, plan.cols);
    return out;
  }) as KernelFunc & { columnSum?: boolean };
  kernelFunc.columnSum = true;
  const config: KernelConfig = { kernelName: 'Sum', backendName: 'wasm', kernelFunc };
  if (existing.setupFunc) config.setupFunc = existing.setupFunc;
  tf.unregisterKernel('Sum', 'wasm');
  tf.registerKernel(config);
}
