/**
 * AdamW as PyTorch 1.13 applies it (`torch.optim.AdamW`, single-tensor path, amsgrad off,
 * maximize off), in float32 tf ops. For each parameter that has a gradient:
 *
 *     step += 1
 *     p  *= 1 − lr·wd                      (decoupled weight decay, on every parameter)
 *     m   = β1·m + (1 − β1)·g
 *     v   = β2·v + (1 − β2)·g²
 *     p  += −(lr / (1 − β1^step)) · m / (√v / √(1 − β2^step) + eps)
 *
 * Hyperparameter arithmetic (1 − lr·wd, the bias corrections, the step size) is done in double
 * precision and the results enter the float32 ops as scalars, as PyTorch does.
 *
 * As in PyTorch, a parameter with no gradient (absent from the map given to `step`, or mapped to
 * null/undefined) is skipped entirely: no decay, no moment update, its step count unchanged. A
 * parameter whose gradient is all zeros is still decayed and its moments are still updated. Step
 * counts are kept per parameter (PyTorch's `state['step']`).
 *
 * The defaults are the original training script's (lr 2e-4, weight decay 1e-3); PyTorch's own are
 * lr 1e-3 and weight decay 1e-2. Betas (0.9, 0.999) and eps 1e-8 are the same in both.
 */
import { InputError, tf } from '@mcp-medsam/core';

export interface AdamWOptions {
  /** Learning rate (default 2e-4). */
  lr?: number;
  /** (β1, β2) (default [0.9, 0.999]). */
  betas?: readonly [number, number];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 1e-3). */
  weightDecay?: number;
}

export interface AdamWHyperparameters {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: Readonly<AdamWHyperparameters> = Object.freeze({
  lr: 2e-4,
  betas: [0.9, 0.999] as [number, number],
  eps: 1e-8,
  weightDecay: 1e-3,
});

/** One parameter's optimizer state (PyTorch's `state[p]`), in C order. */
export interface AdamWParamState {
  step: number;
  shape: number[];
  exp_avg: Float32Array;
  exp_avg_sq: Float32Array;
}

/**
 * A snapshot of the optimizer: hyperparameters (including the current lr) and the state of every
 * parameter that has had a gradient so far, keyed by parameter name.
 */
export interface AdamWState {
  options: AdamWHyperparameters;
  params: Record<string, AdamWParamState>;
}

/** The parameter list: a map or `[name, variable]` pairs (`module.namedParameters()`). */
export type NamedVariables = ReadonlyMap<string, tf.Variable> | Iterable<readonly [string, tf.Variable]>;

/** Gradients by parameter name; a missing, null or undefined entry means "no gradient". */
export type GradMap = ReadonlyMap<string, tf.Tensor | null | undefined>;

interface Slot {
  step: number;
  expAvg: tf.Variable;
  expAvgSq: tf.Variable;
}

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

function checkNumber(name: string, value: unknown, min: number, maxExclusive = Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value >= maxExclusive)
    throw new InputError(
      `AdamW: ${name} must be a finite number >= ${min}${maxExclusive < Infinity ? ` and < ${maxExclusive}` : ''}, got ${String(value)}`,
    );
  return value;
}

function resolveOptions(options: AdamWOptions, base: Readonly<AdamWHyperparameters>): AdamWHyperparameters {
  if (options === null || typeof options !== 'object')
    throw new InputError('AdamW: options must be an object');
  const betas = options.betas ?? base.betas;
  if (!Array.isArray(betas) || betas.length !== 2)
    throw new InputError('AdamW: betas must be a pair [beta1, beta2]');
  return {
    lr: checkNumber('lr', options.lr ?? base.lr, 0),
    betas: [checkNumber('betas[0]', betas[0], 0, 1), checkNumber('betas[1]', betas[1], 0, 1)],
    eps: checkNumber('eps', options.eps ?? base.eps, 0),
    weightDecay: checkNumber('weightDecay', options.weightDecay ?? base.weightDecay, 0),
  };
}

// Non-trainable, so that `tf.variableGrads()` without a list never differentiates them. The
// initial tensor is freed by the tidy; the variable keeps its data (tidy never frees variables).
const zerosVariable = (like: tf.Tensor) => tf.tidy(() => tf.variable(tf.zerosLike(like), false));
const constVariable = (values: Float32Array, shape: number[]) =>
  tf.tidy(() => tf.variable(tf.tensor(values.slice(), shape, 'float32'), false));

export class AdamW {
  private readonly params: Map<string, tf.Variable>;
  private readonly slots = new Map<string, Slot>();
  private hp: AdamWHyperparameters;
  private disposed = false;

  constructor(params: NamedVariables, options: AdamWOptions = {}) {
    this.params = new Map();
    const entries =
      params instanceof Map ? params.entries() : (params as Iterable<readonly [string, tf.Variable]>);
    for (const [name, v] of entries) {
      if (typeof name !== 'string') throw new InputError('AdamW: parameter names must be strings');
      if (!(v instanceof tf.Variable))
        throw new InputError(`AdamW: parameter '${name}' is not a tf.Variable`);
      if (v.dtype !== 'float32')
        throw new InputError(`AdamW: parameter '${name}' must be float32, got ${v.dtype}`);
      if (this.params.has(name)) throw new InputError(`AdamW: parameter '${name}' is listed twice`);
      this.params.set(name, v);
    }
    this.hp = resolveOptions(options, ADAMW_DEFAULTS);
  }

  /** The learning rate used by the next `step` (the schedulers and the last-epoch rule set it). */
  get lr(): number {
    return this.hp.lr;
  }

  set lr(value: number) {
    this.hp.lr = checkNumber('lr', value, 0);
  }

  /** The current hyperparameters (a copy). */
  get options(): AdamWHyperparameters {
    return { ...this.hp, betas: [...this.hp.betas] };
  }

  /** Parameter names in the order given. */
  get paramNames(): string[] {
    return [...this.params.keys()];
  }

  /** The step count of one parameter (0 before its first gradient). */
  stepCount(name: string): number {
    return this.slots.get(name)?.step ?? 0;
  }

  /**
   * Applies one update with the given gradients, in place (`variable.assign`). Every gradient is
   * validated (a known parameter, its shape, float32) before anything changes. The gradients
   * stay owned by the caller.
   */
  step(grads: GradMap): void {
    this.checkLive();
    if (!(grads instanceof Map)) throw new InputError('AdamW.step: grads must be a Map of name to tensor');
    const work: [string, tf.Variable, tf.Tensor][] = [];
    for (const [name, g] of grads) {
      if (g === null || g === undefined) continue;
      const p = this.params.get(name);
      if (!p) throw new InputError(`AdamW.step: gradient for unknown parameter '${name}'`);
      if (!(g instanceof tf.Tensor) || g.isDisposed)
        throw new InputError(`AdamW.step: gradient of '${name}' is not a live tensor`);
      if (g.dtype !== 'float32')
        throw new InputError(`AdamW.step: gradient of '${name}' must be float32, got ${g.dtype}`);
      if (g.shape.length !== p.shape.length || (g.shape as number[]).some((d, i) => d !== p.shape[i]))
        throw new InputError(
          `AdamW.step: gradient of '${name}' has shape ${shapeStr(g.shape)}, parameter ${shapeStr(p.shape)}`,
        );
      work.push([name, p, g]);
    }
    const { lr, betas, eps, weightDecay } = this.hp;
    const [beta1, beta2] = betas;
    for (const [name, p, g] of work) {
      let slot = this.slots.get(name);
      if (!slot) {
        slot = { step: 0, expAvg: zerosVariable(p), expAvgSq: zerosVariable(p) };
        this.slots.set(name, slot);
      }
      slot.step += 1;
      const step = slot.step;
      const stepSize = lr / (1 - beta1 ** step);
      const bias2Sqrt = Math.sqrt(1 - beta2 ** step);
      const { expAvg, expAvgSq } = slot;
      tf.tidy(() => {
        const decayed = tf.mul(p, 1 - lr * weightDecay);
        const m = tf.add(tf.mul(expAvg, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(expAvgSq, beta2), tf.mul(tf.mul(g, 1 - beta2), g));
        const denom = tf.add(tf.div(tf.sqrt(v), bias2Sqrt), eps);
        const updated = tf.add(decayed, tf.div(tf.mul(m, -stepSize), denom));
        expAvg.assign(m);
        expAvgSq.assign(v);
        p.assign(updated);
      });
    }
  }

  /** A copy of the optimizer state (reads the moments back from the backend). */
  state(): AdamWState {
    this.checkLive();
    const params: Record<string, AdamWParamState> = {};
    for (const [name, slot] of this.slots) {
      Object.defineProperty(params, name, {
        value: {
          step: slot.step,
          shape: [...slot.expAvg.shape],
          exp_avg: new Float32Array(slot.expAvg.dataSync()),
          exp_avg_sq: new Float32Array(slot.expAvgSq.dataSync()),
        },
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return { options: this.options, params };
  }

  /**
   * Restores a snapshot from `state()`: hyperparameters and per-parameter state. Parameters not in
   * the snapshot start afresh. Everything is validated before anything changes.
   */
  loadState(state: AdamWState): void {
    this.checkLive();
    if (
      state === null ||
      typeof state !== 'object' ||
      state.params === null ||
      typeof state.params !== 'object'
    )
      throw new InputError('AdamW.loadState: state must be { options, params }');
    const hp = resolveOptions(state.options ?? {}, this.hp);
    const incoming: [string, AdamWParamState][] = [];
    for (const [name, s] of Object.entries(state.params)) {
      const p = this.params.get(name);
      if (!p) throw new InputError(`AdamW.loadState: state for unknown parameter '${name}'`);
      if (s === null || typeof s !== 'object')
        throw new InputError(`AdamW.loadState: bad state for '${name}'`);
      if (!Number.isInteger(s.step) || s.step < 0)
        throw new InputError(
          `AdamW.loadState: step of '${name}' must be an integer >= 0, got ${String(s.step)}`,
        );
      if (
        !Array.isArray(s.shape) ||
        s.shape.length !== p.shape.length ||
        s.shape.some((d, i) => d !== p.shape[i])
      )
        throw new InputError(
          `AdamW.loadState: state of '${name}' has shape ${Array.isArray(s.shape) ? shapeStr(s.shape) : '?'}, parameter ${shapeStr(p.shape)}`,
        );
      for (const key of ['exp_avg', 'exp_avg_sq'] as const) {
        const a = s[key];
        if (!(a instanceof Float32Array) || a.length !== p.size)
          throw new InputError(
            `AdamW.loadState: ${key} of '${name}' must be a Float32Array of ${p.size} values`,
          );
      }
      incoming.push([name, s]);
    }
    this.disposeSlots();
    this.hp = hp;
    for (const [name, s] of incoming) {
      const shape = this.params.get(name)!.shape;
      this.slots.set(name, {
        step: s.step,
        expAvg: constVariable(s.exp_avg, shape),
        expAvgSq: constVariable(s.exp_avg_sq, shape),
      });
    }
  }

  /** Frees the moment tensors (the parameters belong to the caller). */
  dispose(): void {
    this.disposeSlots();
    this.disposed = true;
  }

  private disposeSlots(): void {
    for (const slot of this.slots.values()) {
      slot.expAvg.dispose();
      slot.expAvgSq.dispose();
    }
    this.slots.clear();
  }

  private checkLive(): void {
    if (this.disposed) throw new InputError('AdamW: the optimizer has been disposed');
  }
}
