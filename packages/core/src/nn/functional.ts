import { tf } from '../tf.js';
import { layerNormWithGrad } from './norm.js';
import { normCdf } from '../kernels/norm_cdf.js';
import { GELU_GRAD_KERNEL, GELU_KERNEL, hasGeluKernels } from '../kernels/gelu.js';

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** GELU(x) = x·Φ(x): one fused pass on wasm, else x·normCdf(x). */
function geluValue(x: tf.Tensor): tf.Tensor {
  if (hasGeluKernels()) return tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor;
  return tf.tidy(() => tf.mul(x, normCdf(x)));
}

/**
 * dy·(Φ(x) + x·φ(x)), φ(x) = exp(−x²/2)/√(2π): one fused pass on wasm; elsewhere tf ops with Φ
 * recomputed from x, each full-size intermediate released as soon as it has been used.
 */
function geluGrad(x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  if (hasGeluKernels()) return tf.engine().runKernel(GELU_GRAD_KERNEL, { x, dy }) as tf.Tensor;
  let t = tf.square(x);
  t = replace(t, tf.mul(t, -0.5));
  t = replace(t, tf.exp(t));
  t = replace(t, tf.mul(t, x));
  t = replace(t, tf.mul(t, INV_SQRT_2PI)); // x·φ(x)
  const cdf = normCdf(x);
  t = replace(t, tf.add(t, cdf));
  cdf.dispose();
  return replace(t, tf.mul(t, dy));
}

/** Disposes `old` and returns `next`. */
function replace(old: tf.Tensor, next: tf.Tensor): tf.Tensor {
  old.dispose();
  return next;
}

/**
 * PyTorch's default nn.GELU(): the exact erf form 0.5·x·(1 + erf(x/√2)), not the tanh
 * approximation, computed as x·Φ(x). Its gradient Φ(x) + x·φ(x) is written out so that training
 * keeps x alone instead of the composite's intermediates (at TinyViT's stage 0 each is a
 * 16.7M-element map per sample); on wasm both directions are single fused kernels.
 */
const geluWithGrad = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  (args[1] as tf.GradSaveFunc)([x]);
  return {
    value: geluValue(x),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => geluGrad(saved[0], dy),
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
