import { tf } from '../tf.js';

/** PyTorch's default nn.GELU(): the exact erf form 0.5·x·(1 + erf(x/√2)), not the tanh approximation. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

export function relu(x: tf.Tensor): tf.Tensor {
  return tf.relu(x);
}

/** LeakyReLU with PyTorch's argument order (slope 0.1 in the crop net and decoder blocks). */
export function leakyRelu(x: tf.Tensor, slope: number): tf.Tensor {
  return tf.leakyRelu(x, slope);
}

/**
 * x·Wᵀ for x of shape (..., in) and W of shape (out, in). The weight is transposed explicitly
 * because matMul with a transpose flag is ~10x slower on the wasm backend.
 */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inF = weight.shape[1] as number;
    const outF = weight.shape[0] as number;
    const lead = x.shape.slice(0, -1);
    const x2 = x.rank === 2 ? x : tf.reshape(x, [-1, inF]);
    let y = tf.matMul(x2 as tf.Tensor2D, tf.transpose(weight) as tf.Tensor2D) as tf.Tensor;
    if (bias) y = tf.add(y, bias);
    return x.rank === 2 ? y : tf.reshape(y, [...lead, outF]);
  });
}

/** Layer normalisation over the last axis with the biased variance, as nn.LayerNorm. */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const xhat = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(xhat, weight), bias);
  });
}

/** Softmax over the last axis. */
export function softmax(x: tf.Tensor): tf.Tensor {
  return tf.softmax(x, -1);
}
