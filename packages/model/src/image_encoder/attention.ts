import { LayerNorm, Linear, Module, nn, tf } from '@mcp-medsam/core';

/**
 * TinyViT window attention with a relative position bias per |Δrow|, |Δcol| offset.
 * The qkv projection is laid out per head as [q | k | v] (spec §2.3), not [all q | all k | all v].
 */
export class Attention extends Module {
  readonly norm: LayerNorm;
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly attentionBiases: tf.Variable;
  readonly scale: number;
  /** Row indices of W_qkv for q, k and v, head-major: row h·3kd + part·kd + t. */
  private readonly qkvRows: tf.Tensor1D[];
  constructor(
    readonly dim: number,
    readonly keyDim: number,
    readonly numHeads: number,
    readonly windowSize: number,
  ) {
    super();
    const n = windowSize * windowSize;
    this.scale = keyDim ** -0.5;
    this.norm = this.child('norm', new LayerNorm(dim));
    this.qkv = this.child('qkv', new Linear(dim, 3 * keyDim * numHeads));
    this.proj = this.child('proj', new Linear(keyDim * numHeads, dim));
    this.attentionBiases = this.param('attention_biases', tf.zeros([numHeads, n]));
    // Offset id of token pair (p, q) in a ws×ws window: |Δr|·ws + |Δc| (non-persistent in PyTorch).
    const idx = new Int32Array(n * n);
    for (let p = 0; p < n; p++)
      for (let q = 0; q < n; q++) {
        const dr = Math.abs(Math.floor(p / windowSize) - Math.floor(q / windowSize));
        const dc = Math.abs((p % windowSize) - (q % windowSize));
        idx[p * n + q] = dr * windowSize + dc;
      }
    this.buffer('attention_bias_idxs', tf.tensor1d(idx, 'int32'), false);
    this.qkvRows = [0, 1, 2].map((part) =>
      tf.keep(
        tf.tensor1d(
          Array.from(
            { length: numHeads * keyDim },
            (_, i) => Math.floor(i / keyDim) * 3 * keyDim + part * keyDim + (i % keyDim),
          ),
          'int32',
        ),
      ),
    );
  }

  /** x: (Nw, N, C) window tokens. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [nw, n] = x.shape as [number, number, number];
      const h = this.numHeads;
      const kd = this.keyDim;
      const xn = this.norm.forward(x);
      // Three projections with the q, k and v rows gathered out of the per-head [q|k|v] layout:
      // splitting the (…, 3C) output instead costs a strided copy slower than the matMuls.
      const [q, k, v] = this.qkvRows.map((rows) => {
        // (The bias is added separately: tfjs-wasm's fused matMul misreads the shape of a gather output.)
        const t = tf.add(nn.linear(xn, tf.gather(this.qkv.weight, rows)), tf.gather(this.qkv.bias!, rows));
        return splitHeads(t, nw, n, h, kd);
      });
      const bias = tf.reshape(tf.gather(this.attentionBiases, this.getBuffer('attention_bias_idxs'), 1), [
        h,
        n,
        n,
      ]);
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), this.scale), bias);
      const out = tf.matMul(nn.softmax(scores), v);
      return this.proj.forward(mergeHeads(out, nw, n, h, kd));
    });
  }
}

/**
 * (Nw, N, h·kd) → (Nw, h, N, kd). With one head the transpose moves a unit axis only, and is a
 * reshape (a copy fewer on wasm, in both passes).
 */
export function splitHeads(t: tf.Tensor, nw: number, n: number, h: number, kd: number): tf.Tensor {
  if (h === 1) return tf.reshape(t, [nw, 1, n, kd]);
  return tf.transpose(tf.reshape(t, [nw, n, h, kd]), [0, 2, 1, 3]);
}

/** (Nw, h, N, kd) → (Nw, N, h·kd), the inverse of `splitHeads`. */
export function mergeHeads(t: tf.Tensor, nw: number, n: number, h: number, kd: number): tf.Tensor {
  if (h === 1) return tf.reshape(t, [nw, n, kd]);
  return tf.reshape(tf.transpose(t, [0, 2, 1, 3]), [nw, n, h * kd]);
}
