/**
 * Gradient stops for tfjs, which has no `torch.no_grad()` or `Tensor.detach()`.
 *
 * tfjs records every op run under `tf.grad` / `tf.variableGrads` on its tape, and its backward
 * pass throws ("gradient function not found for Greater") as soon as an op without a registered
 * gradient (Greater, LogicalAnd, LogicalOr, ...) lies on a path from a differentiated input to the
 * result, even when the value it feeds is only used as a constant. Two tools:
 *
 * - `detach(x)`: an identity whose gradient is zero. It stops gradients from flowing back into `x`
 *   through this use, but ops applied *after* it are still taped (and still depend on `x` as far as
 *   the tape is concerned), so it does not make `tf.greater(detach(x), 0)` differentiable.
 * - `noGrad(f)`: runs `f` off the tape (inside a custom-gradient kernel, where tfjs records
 *   nothing) and returns its result as a constant. This is what `torch.no_grad()` blocks compute;
 *   any op may be used inside, and nothing of it ends up on the tape.
 */
import { tf } from '@mcp-medsam/core';

/** Identity in the forward pass, zero gradient in the backward pass (`x.detach()`). */
export function detach<T extends tf.Tensor>(x: T): T {
  const op = tf.customGrad((input) => ({
    value: (input as tf.Tensor).clone(),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return op(x) as T;
}

/**
 * Computes `f()` without recording anything on the gradient tape and returns the result as a
 * tensor with no gradient connection to its inputs (`with torch.no_grad(): ...`). Intermediates
 * made by `f` are disposed; the returned tensor is owned by the caller.
 */
export function noGrad<T extends tf.Tensor>(f: () => T): T {
  const op = tf.customGrad(() => ({
    // A clone, so that a tensor `f` merely passes through is never a kernel output twice.
    value: tf.tidy(() => f().clone()),
    gradFunc: () => [],
  }));
  return op() as T;
}
