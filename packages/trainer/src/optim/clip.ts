/**
 * Gradient norms and `torch.nn.utils.clip_grad_norm_` (L2), in tf ops. Per-tensor norms are summed
 * blockwise (see `sum.ts`), so a million-element gradient has the accuracy of a short sum.
 */
import { InputError, tf } from '@mcp-medsam/core';
import { sumAll } from './sum.js';

function checkGrads(
  where: string,
  grads: unknown,
): asserts grads is Map<string, tf.Tensor | null | undefined> {
  if (!(grads instanceof Map)) throw new InputError(`${where}: grads must be a Map of name to tensor`);
  for (const [name, g] of grads) {
    if (g === null || g === undefined) continue;
    if (!(g instanceof tf.Tensor) || g.isDisposed)
      throw new InputError(`${where}: gradient of '${name}' is not a live tensor`);
    if (g.dtype !== 'float32')
      throw new InputError(`${where}: gradient of '${name}' must be float32, got ${g.dtype}`);
  }
}

/** ‖g‖₂ of one tensor, as a float32 scalar tensor. */
function l2(g: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.sqrt(sumAll(tf.square(g))) as tf.Scalar);
}

/**
 * The L2 norm of every gradient, by name (null/undefined entries are left out). Computed on the
 * backend; one read-back for all of them.
 */
export function gradNorms(grads: ReadonlyMap<string, tf.Tensor | null | undefined>): Map<string, number> {
  checkGrads('gradNorms', grads);
  const names: string[] = [];
  const tensors: tf.Tensor[] = [];
  for (const [name, g] of grads) {
    if (g === null || g === undefined) continue;
    names.push(name);
    tensors.push(g);
  }
  if (names.length === 0) return new Map();
  const values = tf.tidy(() => tf.stack(tensors.map(l2))).dataSync();
  return new Map(names.map((name, i) => [name, values[i]]));
}

/**
 * `torch.nn.utils.clip_grad_norm_(params, maxNorm)` with the L2 norm: the total norm is the norm
 * of the per-tensor norms (float32, as PyTorch), and every gradient is multiplied by
 * `min(1, maxNorm / (total + 1e-6))` (always, like PyTorch 1.13, so a factor of exactly 1 leaves
 * the values unchanged). "In place": each map entry is replaced by its scaled tensor and the
 * replaced tensor is disposed (the map owns its gradients). A non-finite total makes every
 * gradient non-finite, as in PyTorch with `error_if_nonfinite=False`.
 * Returns the total norm before clipping.
 */
export function clipGradNorm(grads: Map<string, tf.Tensor | null | undefined>, maxNorm: number): number {
  checkGrads('clipGradNorm', grads);
  if (typeof maxNorm !== 'number' || !Number.isFinite(maxNorm) || maxNorm < 0)
    throw new InputError(`clipGradNorm: maxNorm must be a finite number >= 0, got ${String(maxNorm)}`);
  const entries = [...grads].filter((e): e is [string, tf.Tensor] => e[1] !== null && e[1] !== undefined);
  if (entries.length === 0) return 0;
  const total = tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.stack(entries.map(([, g]) => l2(g)))))));
  const coef = tf.tidy(() => tf.minimum(tf.div(maxNorm, tf.add(total, 1e-6)), 1));
  for (const [name, g] of entries) {
    grads.set(name, tf.mul(g, coef));
    g.dispose();
  }
  coef.dispose();
  const value = total.dataSync()[0];
  total.dispose();
  return value;
}
