/**
 * Float32 sums with bounded rounding error. The wasm and cpu backends reduce with one running
 * float32 accumulator, whose error grows with the length of the sum (PyTorch and TensorFlow use
 * cascaded sums); summing in blocks of about √n elements and then summing the block sums keeps
 * long sums (a 256×256 mask, a 1M-element gradient) at the accuracy of a short one. Plain tf ops:
 * differentiable, and the same on every backend.
 */
import { tf } from '@mcp-medsam/core';

/** Rows up to this length are summed in one go. */
const DIRECT = 1024;

/** Row sums of a (R, N) tensor, as (R,), summed blockwise. */
export function sumRows(x: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const [rows, n] = x.shape;
    if (n <= DIRECT) return tf.sum(x, 1) as tf.Tensor1D;
    const block = Math.ceil(Math.sqrt(n));
    const blocks = Math.ceil(n / block);
    const padded =
      blocks * block === n
        ? x
        : tf.pad(x, [
            [0, 0],
            [0, blocks * block - n],
          ]);
    return tf.sum(tf.sum(tf.reshape(padded, [rows, blocks, block]), 2), 1) as tf.Tensor1D;
  });
}

/** Sum of every element of `x`, as a scalar, summed blockwise. */
export function sumAll(x: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.reshape(sumRows(tf.reshape(x, [1, x.size])), []) as tf.Scalar);
}
