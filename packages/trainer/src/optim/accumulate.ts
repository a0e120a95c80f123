/**
 * Gradient accumulation over micro-batches: `add` the gradients of each of k micro-batches, then
 * `mean()` gives Σ gᵢ / k (PyTorch accumulates Σ ∇(Lᵢ/k), the same up to float32 rounding).
 * A parameter missing from some micro-batches is summed over those that have it and still
 * divided by k, as in PyTorch (its missing gradients count as zero).
 */
import { InputError, tf } from '@mcp-medsam/core';

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

export class GradAccumulator {
  private readonly sums = new Map<string, tf.Tensor>();
  private n = 0;

  /** Number of `add` calls since the last reset. */
  get count(): number {
    return this.n;
  }

  /** Names of the parameters with an accumulated gradient. */
  get names(): string[] {
    return [...this.sums.keys()];
  }

  /**
   * Adds one micro-batch's gradients (null/undefined entries: no gradient). The given tensors stay
   * owned by the caller, who may dispose them right after. Validated before anything is added.
   */
  add(grads: ReadonlyMap<string, tf.Tensor | null | undefined>): void {
    if (!(grads instanceof Map))
      throw new InputError('GradAccumulator.add: grads must be a Map of name to tensor');
    const work: [string, tf.Tensor][] = [];
    for (const [name, g] of grads) {
      if (g === null || g === undefined) continue;
      if (!(g instanceof tf.Tensor) || g.isDisposed)
        throw new InputError(`GradAccumulator.add: gradient of '${name}' is not a live tensor`);
      if (g.dtype !== 'float32')
        throw new InputError(`GradAccumulator.add: gradient of '${name}' must be float32, got ${g.dtype}`);
      const prev = this.sums.get(name);
      if (prev && (prev.rank !== g.rank || prev.shape.some((d, i) => d !== g.shape[i])))
        throw new InputError(
          `GradAccumulator.add: gradient of '${name}' has shape ${shapeStr(g.shape)}, earlier ${shapeStr(prev.shape)}`,
        );
      work.push([name, g]);
    }
    for (const [name, g] of work) {
      const prev = this.sums.get(name);
      // kept: a caller's enclosing tf.tidy must not free the running sums
      const next = tf.keep(prev ? tf.tidy(() => tf.add(prev, g)) : tf.tidy(() => tf.clone(g)));
      prev?.dispose();
      this.sums.set(name, next);
    }
    this.n += 1;
  }

  /** Σ gᵢ / k as new tensors (owned by the caller); k defaults to the number of `add` calls. */
  mean(k: number = this.n): Map<string, tf.Tensor> {
    if (!Number.isInteger(k) || k < 1)
      throw new InputError(`GradAccumulator.mean: k must be an integer >= 1, got ${String(k)}`);
    const out = new Map<string, tf.Tensor>();
    for (const [name, s] of this.sums) out.set(name, k === 1 ? tf.clone(s) : tf.div(s, k));
    return out;
  }

  /** The raw sums as new tensors (owned by the caller). */
  sum(): Map<string, tf.Tensor> {
    return new Map([...this.sums].map(([name, s]) => [name, tf.clone(s)]));
  }

  /** Frees the sums and starts over. */
  reset(): void {
    for (const s of this.sums.values()) s.dispose();
    this.sums.clear();
    this.n = 0;
  }

  dispose(): void {
    this.reset();
  }
}
