import type { Module } from '../packages/core/src/nn/module.js';
import { randomArray } from './reference.js';

/**
 * Fills every float state-dict entry of a module with deterministic values in [-0.5, 0.5)
 * (running variances in [0.5, 1)) and returns them by key, for checks against references.
 */
export function randomize(m: Module, seed: number): Map<string, Float32Array> {
  const values = new Map<string, Float32Array>();
  const entries = new Map();
  let s = seed;
  for (const [k, t] of m.stateDictTensors()) {
    if (t.dtype === 'int32') continue;
    const v = randomArray(t.size, s++, 0.5);
    if (k.endsWith('running_var')) for (let i = 0; i < v.length; i++) v[i] = 0.5 + Math.abs(v[i]);
    values.set(k, v);
    entries.set(k, { shape: t.shape, data: v });
  }
  m.loadStateDict(entries, { strict: false });
  return values;
}
