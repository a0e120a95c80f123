// BatchMatMul gradient: broadcast-correct on every backend. On wasm, a side shared across the
// batch folds the batch into 2-D matMuls (XNNPACK's), and the weight gradient of such a product
// (Σ over every row of xᵀ·dy, a contraction over 10^4-10^5 rows) goes to the SIMD batched
// matMul with its transpose flag, which reads x in place: the explicit transpose it replaces
// cost a pass over x, and XNNPACK re-packs its right operand (dy, as large) on every call.
// Products batched on both sides keep the flag formulation, also the SIMD kernel's.
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { hasSimdBatchMatMul } from '../kernels/batch_matmul.js';
import { swapLast } from './util.js';

const size = (shape: number[]) => shape.reduce((p, d) => p * d, 1);

/** Sums g (shape [...batch, r, c]) down to `shape`, which broadcasts to it. */
function reduceTo(g: Tensor, shape: number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? tf.sum(g, axes) : g;
  return tf.reshape(s, shape);
}

/** Σ_b x[b] @ y[b] for x [B, m, k] and y [B, k, n], as one 2-D matMul over (b, k). */
function contractBatch(x: Tensor, y: Tensor): Tensor {
  const [b, m, k] = x.shape as number[];
  const n = y.shape[2] as number;
  const x2 = tf.reshape(tf.transpose(x, [1, 0, 2]), [m, b * k]);
  return tf.matMul(x2 as tf.Tensor2D, tf.reshape(y, [b * k, n]) as tf.Tensor2D);
}

/** x[b] @ y for every b, x [..., m, k], y [k, n], folded into one 2-D matMul. */
function foldLeft(x: Tensor, y: Tensor): Tensor {
  const k = x.shape[x.rank - 1];
  const out = tf.matMul(tf.reshape(x, [-1, k]) as tf.Tensor2D, y as tf.Tensor2D);
  return tf.reshape(out, [...x.shape.slice(0, -1), y.shape[1] as number]);
}

/** x @ y[b] for every b, x [m, k], y [B, k, n], as one 2-D matMul. */
function foldRight(x: Tensor, y: Tensor): Tensor {
  const [b, k, n] = y.shape as number[];
  const m = x.shape[0];
  const y2 = tf.reshape(tf.transpose(y, [1, 0, 2]), [k, b * n]);
  const out = tf.reshape(tf.matMul(x as tf.Tensor2D, y2 as tf.Tensor2D), [m, b, n]);
  return tf.transpose(out, [1, 0, 2]);
}

/** Gradients on wasm: 2-D matMuls wherever the batch allows. */
function wasmGrads(
  a: Tensor,
  b: Tensor,
  dy: Tensor,
  tA: boolean,
  tB: boolean,
): { da: () => Tensor; db: () => Tensor } | null {
  const aB = a.shape.slice(0, -2);
  const bB = b.shape.slice(0, -2);
  const oB = dy.shape.slice(0, -2);
  const nA = size(aB);
  const nB = size(bB);
  const nO = size(oB);
  // Only layouts where one side is unbatched (batch 1) and the other is 1 or the output batch.
  if ((nA > 1 && nB > 1) || (nA !== nO && nA !== 1) || (nB !== nO && nB !== 1)) return null;
  const flags = hasSimdBatchMatMul();
  const m = dy.shape[dy.rank - 2];
  const n = dy.shape[dy.rank - 1];
  const k = tA ? a.shape[a.rank - 2] : a.shape[a.rank - 1];
  const A = () => tf.reshape(tA ? swapLast(a) : a, [nA, m, k]); // A' = op(a)
  const D = tf.reshape(dy, [nO, m, n]);
  const BT = () => tf.reshape(tB ? b : swapLast(b), [nB, n, k]); // B'^T
  const AT = () => tf.reshape(tA ? a : swapLast(a), [nA, k, m]); // A'^T
  const da = () => {
    // dA' = dy @ B'^T, shape [nA, m, k]
    let g: Tensor;
    if (nB === 1) {
      const bt = tf.reshape(BT(), [n, k]);
      g = nA === nO ? foldLeft(D, bt) : tf.matMul(tf.sum(D, 0) as tf.Tensor2D, bt as tf.Tensor2D);
    } else {
      g = contractBatch(D, BT()); // nA === 1: Σ_b dy_b @ B'_b^T
    }
    g = tf.reshape(g, [...aB, m, k]);
    return tA ? swapLast(g) : g;
  };
  const db = () => {
    // dB' = A'^T @ dy, shape [nB, k, n]
    let g: Tensor;
    if (flags && !tA && nB === 1) {
      // (nA = nO here) Σ over all rows of x(rows, k)ᵀ · dy(rows, n), x read in place
      g = tf.matMul(tf.reshape(a, [nA * m, k]), tf.reshape(D, [nO * m, n]), true, false);
    } else if (nA === 1) {
      const at = tf.reshape(AT(), [k, m]) as tf.Tensor2D;
      if (nB === 1) g = tf.matMul(at, (nO === 1 ? tf.reshape(D, [m, n]) : tf.sum(D, 0)) as tf.Tensor2D);
      else g = foldRight(at, D);
    } else {
      // nB === 1: Σ_b A'_b^T @ dy_b, one contraction over (b, m)
      g = tf.matMul(
        tf.transpose(tf.reshape(A(), [nA * m, k])) as tf.Tensor2D,
        tf.reshape(D, [nO * m, n]) as tf.Tensor2D,
      );
    }
    g = tf.reshape(g, [...bB, k, n]);
    return tB ? swapLast(g) : g;
  };
  return { da, db };
}

export const batchMatMulGradConfig: GradConfig = {
  kernelName: 'BatchMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const g = dy as Tensor;
    const [a, b] = saved;
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const tA = !!transposeA;
    const tB = !!transposeB;
    if (tf.getBackend() === 'wasm') {
      const w = wasmGrads(a, b, g, tA, tB);
      if (w) return { a: () => reduceTo(w.da(), a.shape), b: () => reduceTo(w.db(), b.shape) };
    }
    // The standard formulation (native kernels, and wasm's batched kernel, take the transpose
    // flags at full speed), plus the reduction over broadcast batch dimensions it lacks.
    const da = () => (tA ? tf.matMul(b, g, tB, true) : tf.matMul(g, b, false, !tB));
    const db = () => (tB ? tf.matMul(g, a, true, tA) : tf.matMul(a, g, !tA, false));
    return { a: () => reduceTo(da(), a.shape), b: () => reduceTo(db(), b.shape) };
  },
};
