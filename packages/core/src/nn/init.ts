import { tf } from '../tf.js';

/**
 * Seeded parameter initialisation. Each new tensor draws from its own seed (base seed plus a
 * counter), so building the same model after `setInitSeed(s)` gives identical weights.
 */
let baseSeed = 0;
let counter = 0;

export function setInitSeed(seed: number): void {
  baseSeed = seed;
  counter = 0;
}

function nextSeed(): number {
  counter += 1;
  return (baseSeed * 1000003 + counter) % 2147483647;
}

/** U(-bound, bound), PyTorch's default for Linear and Conv weights and biases (bound = 1/sqrt(fan_in)). */
export function uniformInit(shape: number[], bound: number): tf.Tensor {
  return tf.randomUniform(shape, -bound, bound, 'float32', nextSeed());
}

/** N(0, std). */
export function normalInit(shape: number[], std = 1): tf.Tensor {
  return tf.randomNormal(shape, 0, std, 'float32', nextSeed());
}
