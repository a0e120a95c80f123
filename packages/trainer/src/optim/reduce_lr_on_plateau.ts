/**
 * `torch.optim.lr_scheduler.ReduceLROnPlateau` (PyTorch 1.13), for an optimizer with a single lr.
 *
 * `step(metric)`: the metric is better than the best so far when (mode min, threshold_mode rel)
 * `metric < best·(1 − threshold)` (abs: `metric < best − threshold`; mode max mirrors both);
 * a better metric becomes the best and resets the bad-epoch count, anything else (NaN included)
 * counts as a bad epoch. During cooldown the counter is decremented and bad epochs are ignored.
 * When the count exceeds `patience` the lr becomes `max(lr·factor, minLr)`, but only if that
 * lowers it by more than `eps`; then cooldown starts and the count resets.
 *
 * Defaults are the original training script's (factor 0.9, patience 5); PyTorch's are factor 0.1
 * and patience 10. threshold 1e-4 (rel), cooldown 0, minLr 0 and eps 1e-8 are PyTorch's.
 */
import { InputError } from '@mcp-medsam/core';

/** Anything with a settable learning rate (an `AdamW`). */
export interface LrHolder {
  lr: number;
}

export type PlateauMode = 'min' | 'max';
export type ThresholdMode = 'rel' | 'abs';

export interface ReduceLROnPlateauOptions {
  mode?: PlateauMode;
  factor?: number;
  patience?: number;
  threshold?: number;
  thresholdMode?: ThresholdMode;
  cooldown?: number;
  minLr?: number;
  eps?: number;
}

/**
 * Everything the scheduler holds (PyTorch's `state_dict()`). `best` is ±Infinity before the first
 * improvement; JSON turns that into null, which `loadState` reads back as "no best yet".
 */
export interface ReduceLROnPlateauState {
  mode: PlateauMode;
  factor: number;
  patience: number;
  threshold: number;
  thresholdMode: ThresholdMode;
  cooldown: number;
  minLr: number;
  eps: number;
  best: number | null;
  numBadEpochs: number;
  cooldownCounter: number;
  lastEpoch: number;
  lastLr: number | null;
}

export const PLATEAU_DEFAULTS: Readonly<Required<ReduceLROnPlateauOptions>> = Object.freeze({
  mode: 'min',
  factor: 0.9,
  patience: 5,
  threshold: 1e-4,
  thresholdMode: 'rel',
  cooldown: 0,
  minLr: 0,
  eps: 1e-8,
});

function fail(msg: string): never {
  throw new InputError(`ReduceLROnPlateau: ${msg}`);
}

function num(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
    fail(`${name} must be a finite number >= ${min}, got ${String(v)}`);
  return v;
}

function int(name: string, v: unknown, min: number): number {
  if (!Number.isInteger(v) || (v as number) < min)
    fail(`${name} must be an integer >= ${min}, got ${String(v)}`);
  return v as number;
}

function resolve(o: ReduceLROnPlateauOptions): Required<ReduceLROnPlateauOptions> {
  if (o === null || typeof o !== 'object') fail('options must be an object');
  const r = {
    ...PLATEAU_DEFAULTS,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  };
  if (r.mode !== 'min' && r.mode !== 'max') fail(`mode must be 'min' or 'max', got ${String(r.mode)}`);
  if (r.thresholdMode !== 'rel' && r.thresholdMode !== 'abs')
    fail(`thresholdMode must be 'rel' or 'abs', got ${String(r.thresholdMode)}`);
  num('factor', r.factor, 0);
  if (r.factor >= 1) fail(`factor must be < 1, got ${r.factor}`);
  int('patience', r.patience, 0);
  num('threshold', r.threshold, 0);
  int('cooldown', r.cooldown, 0);
  num('minLr', r.minLr, 0);
  num('eps', r.eps, 0);
  return r;
}

export class ReduceLROnPlateau {
  readonly optimizer: LrHolder;
  private o: Required<ReduceLROnPlateauOptions>;
  private bestValue: number;
  private bad = 0;
  private cooldownLeft = 0;
  private epoch = 0;
  private last: number | null = null;

  constructor(optimizer: LrHolder, options: ReduceLROnPlateauOptions = {}) {
    if (optimizer === null || typeof optimizer !== 'object' || typeof optimizer.lr !== 'number')
      fail('optimizer must have a numeric lr');
    this.optimizer = optimizer;
    this.o = resolve(options);
    this.bestValue = this.modeWorse;
  }

  private get modeWorse(): number {
    return this.o.mode === 'min' ? Infinity : -Infinity;
  }

  /** The best metric so far (±Infinity before any). */
  get best(): number {
    return this.bestValue;
  }

  get numBadEpochs(): number {
    return this.bad;
  }

  get cooldownCounter(): number {
    return this.cooldownLeft;
  }

  get inCooldown(): boolean {
    return this.cooldownLeft > 0;
  }

  /** Number of `step` calls (PyTorch's `last_epoch`). */
  get lastEpoch(): number {
    return this.epoch;
  }

  /** The lr after the last `step` (null before the first). */
  get lastLr(): number | null {
    return this.last;
  }

  get options(): Required<ReduceLROnPlateauOptions> {
    return { ...this.o };
  }

  isBetter(a: number, best: number): boolean {
    const { mode, thresholdMode, threshold } = this.o;
    if (mode === 'min' && thresholdMode === 'rel') return a < best * (1 - threshold);
    if (mode === 'min') return a < best - threshold;
    if (thresholdMode === 'rel') return a > best * (threshold + 1);
    return a > best + threshold;
  }

  /** Records one epoch's metric; returns the optimizer's lr afterwards. */
  step(metric: number): number {
    if (typeof metric !== 'number') fail(`metric must be a number, got ${typeof metric}`);
    this.epoch += 1;
    if (this.isBetter(metric, this.bestValue)) {
      this.bestValue = metric;
      this.bad = 0;
    } else {
      this.bad += 1;
    }
    if (this.inCooldown) {
      this.cooldownLeft -= 1;
      this.bad = 0; // bad epochs in cooldown are ignored
    }
    if (this.bad > this.o.patience) {
      this.reduceLr();
      this.cooldownLeft = this.o.cooldown;
      this.bad = 0;
    }
    this.last = this.optimizer.lr;
    return this.last;
  }

  private reduceLr(): void {
    const oldLr = this.optimizer.lr;
    const newLr = Math.max(oldLr * this.o.factor, this.o.minLr);
    if (oldLr - newLr > this.o.eps) this.optimizer.lr = newLr;
  }

  state(): ReduceLROnPlateauState {
    return {
      ...this.o,
      best: this.bestValue,
      numBadEpochs: this.bad,
      cooldownCounter: this.cooldownLeft,
      lastEpoch: this.epoch,
      lastLr: this.last,
    };
  }

  /** Restores a `state()` snapshot (hyperparameters and counters); validated before it applies. */
  loadState(state: ReduceLROnPlateauState): void {
    if (state === null || typeof state !== 'object') fail('state must be an object');
    const o = resolve({
      mode: state.mode,
      factor: state.factor,
      patience: state.patience,
      threshold: state.threshold,
      thresholdMode: state.thresholdMode,
      cooldown: state.cooldown,
      minLr: state.minLr,
      eps: state.eps,
    });
    const best = state.best === null ? (o.mode === 'min' ? Infinity : -Infinity) : state.best;
    if (typeof best !== 'number' || Number.isNaN(best))
      fail(`best must be a number or null, got ${String(best)}`);
    const bad = int('numBadEpochs', state.numBadEpochs, 0);
    const cooldownLeft = int('cooldownCounter', state.cooldownCounter, 0);
    const epoch = int('lastEpoch', state.lastEpoch, 0);
    if (state.lastLr !== null && state.lastLr !== undefined) num('lastLr', state.lastLr, 0);
    this.o = o;
    this.bestValue = best;
    this.bad = bad;
    this.cooldownLeft = cooldownLeft;
    this.epoch = epoch;
    this.last = state.lastLr ?? null;
  }
}
