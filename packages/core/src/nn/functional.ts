import { tf } from '../tf.js';
import { layerNormWithGrad } from './norm.js';
import { normCdf } from '../kernels/norm_cdf.js';

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * PyTorch's default nn.GELU(): the exact erf form 0.5·x·(1 + erf(x/√2)), not the tanh
 * approximation, computed as x·Φ(x). Its gradient Φ(x) + x·φ(x) is written out so that training
 * keeps x and Φ(x) instead of the composite's intermediates (at TinyViT's stage 0 each is a
 * 16.7M-element map per sample).
 */
const geluWithGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  const cdf = normCdf(x);
  // Φ(x) is kept for the backward pass: recomputing erf there would double its cost.
  (args[1] as tf.GradSaveFunc)([x, cdf]);
  return {
    value: tf.mul(x, cdf),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [v, phi] = saved;
        const pdf = tf.mul(tf.exp(tf.mul(tf.square(v), -0.5)), INV_SQRT_2PI);
        return tf.mul(dy, tf.add(phi, tf.mul(v, pdf)));
      }),
  };
});

export function gelu(x: tf.Tensor): tf.Tensor {
  return geluWithGrad(x);
}

export function relu(x: tf.Tensor): tf.Tensor {
  return tf.relu(x);
}

/** LeakyReLU with PyTorch's argument order (slope 0.1 in the crop net and decoder blocks). */
export function leakyRelu(x: tf.Tensor, slope: number): tf.Tensor {
  return tf.leakyRelu(x, slope);
}

/**
 * x·Wᵀ (+ bias) for x of shape (..., in) and W of shape (out, in). The weight is transposed explicitly
 * because matMul with a transpose flag is ~10x slower on the wasm backend.
 */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor, fused = false): tf.Tensor {
  return tf.tidy(() => {
    const inF = weight.shape[1] as number;
    const outF = weight.shape[0] as number;
    const lead = x.shape.slice(0, -1);
    const x2 = (x.rank === 2 ? x : tf.reshape(x, [-1, inF])) as tf.Tensor2D;
    const wt = tf.transpose(weight) as tf.Tensor2D;
    // The fused bias add is for inference only (tfjs's fused-op gradients are slow on wasm).
    let y: tf.Tensor = fused && bias ? tf.fused.matMul({ a: x2, b: wt, bias }) : tf.matMul(x2, wt);
    if (bias && !fused) y = tf.add(y, bias);
    return x.rank === 2 ? y : tf.reshape(y, [...lead, outF]);
  });
}

/** Layer normalisation over the last axis with the biased variance, as nn.LayerNorm. */
export function layerNorm(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor,
  eps: number,
  training = false,
): tf.Tensor {
  if (training) return layerNormWithGrad(x, weight, bias, eps);
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
