import { tf } from '../tf.js';
import { batchNormGradKernel, batchNormTrainKernel, hasBatchNormKernels } from '../kernels/batch_norm.js';

/**
 * Training-mode batch normalisation over every axis but the last (NHWC), with its gradient
 * written out. The tape keeps only x̂ and 1/σ instead of the half-dozen full-size
 * intermediates of the composite, which decides whether TinyViT's 256x256 stage fits in the
 * wasm heap. On wasm each direction is one fused kernel (../kernels/batch_norm.ts: float64
 * statistics, no map-sized temporaries); elsewhere tf ops that free their temporaries early.
 * Returns the batch mean and biased variance for the running-statistics update.
 */
export function batchNormTrain(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor,
  eps: number,
): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const c = x.shape[x.rank - 1] as number;
  const rows = x.size / c;
  let mean: tf.Tensor | undefined;
  let variance: tf.Tensor | undefined;
  // tf ops: per-channel means through an average pool over the whole map (on wasm a reduction
  // over the leading axes transposes the map first, and a ones-vector matMul repacks it; the
  // pool is one pass, ~30x faster than either at stage 0).
  const colMean = (t: tf.Tensor) => channelMean(t, c);
  const fused = hasBatchNormKernels();
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xx, w, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    if (fused) {
      // wasm: one kernel each way, float64 statistics, no map-sized temporaries
      const r = batchNormTrainKernel(xx, w, b, eps);
      mean = tf.keep(r.mean);
      variance = tf.keep(r.variance);
      save([r.xhat, r.invStd, w]);
      return {
        value: r.y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xh, inv, g] = saved;
          return tf.tidy(() => {
            const { dx, dWeight, dBias } = batchNormGradKernel(dy, xh, tf.mul(g, inv));
            return [dx, dWeight, dBias];
          });
        },
      };
    }
    // Full-size (B,H,W,C) intermediates are released as soon as they have been used: at most
    // two are alive besides x and the results (one tidy would hold all of them to its end).
    const m = colMean(xx);
    const centred = tf.sub(xx, m);
    const sq = tf.square(centred);
    const v = colMean(sq);
    sq.dispose();
    mean = tf.keep(m);
    variance = tf.keep(v);
    const invStd = tf.rsqrt(tf.add(v, eps));
    const xhat = tf.mul(centred, invStd);
    centred.dispose();
    save([xhat, invStd, w]);
    const scaled = tf.mul(xhat, w);
    const value = tf.add(scaled, b);
    scaled.dispose();
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, g] = saved;
        return tf.tidy(() => {
          const dyMean = colMean(dy);
          const prod = tf.mul(dy, xh);
          const dyXhatMean = colMean(prod);
          prod.dispose();
          // dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)), at most three full-size temporaries
          const centredGrad = tf.sub(dy, dyMean);
          const proj = tf.mul(xh, dyXhatMean);
          const t = tf.sub(centredGrad, proj);
          tf.dispose([centredGrad, proj]);
          const dx = replace(t, tf.mul(t, tf.mul(g, inv)));
          return [dx, tf.mul(dyXhatMean, rows), tf.mul(dyMean, rows)];
        });
      },
    };
  });
  const y = op(x, weight, bias);
  return { y, mean: mean!, variance: variance! };
}

/**
 * Layer normalisation over the last axis (biased variance) with its gradient written out, so
 * the tape keeps x̂ and 1/σ only.
 */
export const layerNormWithGrad = (x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor =>
  tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xx, w, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const { mean, variance } = tf.moments(xx, -1, true);
    const invStd = tf.rsqrt(tf.add(variance, eps));
    const xhat = tf.mul(tf.sub(xx, mean), invStd);
    save([xhat, invStd, w]);
    return {
      value: tf.add(tf.mul(xhat, w), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, inv, g] = saved;
        return tf.tidy(() => {
          const lead = dy.shape.slice(0, -1).map((_, i) => i);
          const dBias = tf.sum(dy, lead);
          const dWeight = tf.sum(tf.mul(dy, xh), lead);
          const gdy = tf.mul(dy, g);
          // dx = 1/σ · (g·dy − mean(g·dy) − x̂·mean(g·dy·x̂)) over the normalised axis
          const dx = tf.mul(
            tf.sub(tf.sub(gdy, tf.mean(gdy, -1, true)), tf.mul(xh, tf.mean(tf.mul(gdy, xh), -1, true))),
            inv,
          );
          return [dx, dWeight, dBias];
        });
      },
    };
  })(x, weight, bias);

/** Disposes `old` and returns `next`. */
function replace(old: tf.Tensor, next: tf.Tensor): tf.Tensor {
  old.dispose();
  return next;
}

/** Mean over every axis but the last, as a (C,) tensor, via one average pool. */
export function channelMean(t: tf.Tensor, c: number): tf.Tensor {
  return tf.tidy(() => {
    const map = (t.rank === 4 ? t : tf.reshape(t, [1, t.size / c, 1, c])) as tf.Tensor4D;
    const [n, h, w] = map.shape;
    const pooled = tf.avgPool(map, [h, w], [h, w], 'valid'); // (N, 1, 1, C)
    return tf.reshape(n === 1 ? pooled : tf.mean(pooled, 0), [c]);
  });
}
