// Broadcasting add, sub and mul for the wasm backend. tfjs-backend-wasm's binary kernels run a
// same-shape pair at memory speed but a broadcast pair (a bias or LayerNorm weight added to every
// row, a per-row mean subtracted) at a quarter of it, computing each element's source index.
// These are most of the elementwise work of the small models' training steps. The SIMD loops in
// packages/core/wasm/broadcast_binary.wat take the two common patterns; the arithmetic is the
// same float32 operation, so the results are identical.
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { WASM_BASE64 } from './generated/broadcast_binary.js';
import { offsetOf, wasmExports, type WasmBackendLike } from './wasm_module.js';

type Loop = (op: number, a: number, b: number, out: number, rows: number, cols: number) => void;

const OPS = { Add: 0, Sub: 1, Multiply: 2 } as const;
const REVERSE_SUB = 3;

export interface BroadcastPlan {
  outShape: number[];
  /** Which input is the full-size one. */
  full: 'a' | 'b';
  /** suffix: the small input is one row shared by every row; prefix: one value per row. */
  pattern: 'suffix' | 'prefix';
  rows: number;
  cols: number;
}

/**
 * How a float32 pair broadcasts, when one input has the output's shape and the other is a
 * trailing row (suffix) or a per-row column (prefix) of at least 4 and a multiple of 4 values
 * per row; null otherwise (same shapes, scalars and the rest stay with tfjs's kernel).
 */
export function planBroadcast(a: TensorInfo, b: TensorInfo): BroadcastPlan | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || tf.util.arraysEqual(a.shape, b.shape)) return null;
  let outShape: number[];
  try {
    outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
  } catch {
    return null;
  }
  const size = tf.util.sizeFromShape(outShape);
  const full =
    tf.util.sizeFromShape(a.shape) === size ? 'a' : tf.util.sizeFromShape(b.shape) === size ? 'b' : null;
  if (!full || size === 0) return null;
  const small = full === 'a' ? b.shape : a.shape;
  const lead = outShape.length - small.length;
  // Unit axes of the output take no part; on the others the small input is either broadcast
  // (1) or full.
  const axes = outShape.flatMap((d, i) =>
    d === 1 ? [] : [{ d, bcast: (i < lead ? 1 : small[i - lead]) === 1 }],
  );
  const firstFull = axes.findIndex((x) => !x.bcast);
  const firstBcast = axes.findIndex((x) => x.bcast);
  if (firstFull < 0) return null; // a scalar-like operand
  let pattern: BroadcastPlan['pattern'];
  let split: number;
  if (axes.slice(firstFull).every((x) => !x.bcast)) {
    pattern = 'suffix'; // broadcast axes, then full ones
    split = firstFull;
  } else if (axes.slice(firstBcast).every((x) => x.bcast)) {
    pattern = 'prefix'; // full axes, then broadcast ones
    split = firstBcast;
  } else return null;
  const rows = axes.slice(0, split).reduce((p, x) => p * x.d, 1);
  const cols = size / rows;
  if (cols < 4 || cols % 4 !== 0) return null;
  return { outShape, full, pattern, rows, cols };
}

function wrap(kernelName: keyof typeof OPS): void {
  const existing = tf.getKernel(kernelName, 'wasm');
  if (!existing || (existing.kernelFunc as { simdBroadcast?: boolean }).simdBroadcast) return;
  const fallback = existing.kernelFunc;
  const kernelFunc = ((args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const plan = planBroadcast(a, b);
    const backend = args.backend as unknown as WasmBackendLike;
    const fn = plan
      ? (wasmExports(backend, WASM_BASE64)?.[plan?.pattern ?? 'suffix'] as Loop | undefined)
      : undefined;
    if (!plan || !fn) return fallback(args);
    const [big, small] = plan.full === 'a' ? [a, b] : [b, a];
    const op = kernelName === 'Sub' && plan.full === 'b' ? REVERSE_SUB : OPS[kernelName];
    const out = backend.makeOutput(plan.outShape, 'float32');
    fn(op, offsetOf(backend, big), offsetOf(backend, small), offsetOf(backend, out), plan.rows, plan.cols);
    return out;
  }) as KernelFunc & { simdBroadcast?: boolean };
  kernelFunc.simdBroadcast = true;
  const config: KernelConfig = { kernelName, backendName: 'wasm', kernelFunc };
  if (existing.setupFunc) config.setupFunc = existing.setupFunc;
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel(config);
}

/** Wraps the registered wasm Add, Sub and Multiply: the two broadcast patterns go to the SIMD loops. */
export function registerWasmBroadcastBinary(): void {
  for (const name of Object.keys(OPS) as (keyof typeof OPS)[]) wrap(name);
}
