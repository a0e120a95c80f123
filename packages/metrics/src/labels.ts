/**
 * Validation of label-map inputs and their conversion to the compact maps the metrics use.
 */
import { InputError } from '@mcp-medsam/core/common';
import type { LabelData } from './surface/distances.js';

/** Anything shaped like io's `NdArray`: a dtype name, a shape and C-order data. */
export interface ArrayInput {
  dtype?: string;
  shape: readonly number[];
  data: ArrayLike<number> | BigInt64Array | BigUint64Array;
}

const INTEGER_DTYPES = new Set([
  'bool',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
]);

/** Largest label id supported (ground-truth maximum). */
export const MAX_LABEL = 65535;

function checkArray(a: ArrayInput, name: string, file?: string): void {
  const opts = file ? { file } : {};
  if (!a || !Array.isArray(a.shape) || a.data === undefined) {
    throw new InputError(`${name} is not an array`, opts);
  }
  if (a.dtype !== undefined && !INTEGER_DTYPES.has(a.dtype)) {
    throw new InputError(`${name} has dtype ${a.dtype}; label maps must have an integer or bool dtype`, opts);
  }
  if (a.dtype === undefined && (a.data instanceof Float32Array || a.data instanceof Float64Array)) {
    throw new InputError(`${name} holds floating-point data; label maps must be integers`, opts);
  }
  if (a.shape.length !== 2 && a.shape.length !== 3) {
    throw new InputError(
      `${name} must be 2D (H, W) or 3D (D, H, W), got shape [${a.shape.join(', ')}]`,
      opts,
    );
  }
  let n = 1;
  for (const s of a.shape) {
    if (!Number.isInteger(s) || s < 1)
      throw new InputError(`${name} has an invalid shape [${a.shape.join(', ')}]`, opts);
    n *= s;
  }
  if (a.data.length !== n) {
    throw new InputError(`${name} has ${a.data.length} elements for shape [${a.shape.join(', ')}]`, opts);
  }
}

/** Maximum of an integer array as a number (-Infinity when empty). */
function maxOf(data: ArrayInput['data']): number {
  let m = -Infinity;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    let mb: bigint | null = null;
    for (let i = 0; i < data.length; i++) if (mb === null || data[i] > mb) mb = data[i];
    return mb === null ? m : Number(mb);
  }
  const d = data as ArrayLike<number>;
  for (let i = 0; i < d.length; i++) if (d[i] > m) m = d[i];
  return m;
}

/**
 * A validated pair of label maps: the same shape, integer dtypes, converted to Uint8Array (when
 * the ground-truth maximum is at most 255) or Uint16Array. Values outside 1..maxLabel become 0
 * (they can never match a scored label). `maxLabel` is `gt.max()` (0 or less: no label).
 */
export interface LabelPair {
  gt: LabelData;
  seg: LabelData;
  shape: number[];
  maxLabel: number;
}

function convert(data: ArrayInput['data'], maxLabel: number, wide: boolean): LabelData {
  if (!wide && data instanceof Uint8Array) return data;
  if (wide && data instanceof Uint16Array) return data;
  const n = data.length;
  const out = wide ? new Uint16Array(n) : new Uint8Array(n);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const hi = BigInt(Math.max(maxLabel, 0));
    for (let i = 0; i < n; i++) {
      const v = data[i];
      out[i] = v >= 1n && v <= hi ? Number(v) : 0;
    }
  } else {
    const d = data as ArrayLike<number>;
    for (let i = 0; i < n; i++) {
      const v = d[i];
      out[i] = v >= 1 && v <= maxLabel ? v : 0;
    }
  }
  return out;
}

/** Validates and converts a (ground truth, prediction) pair; errors name `file` when given. */
export function toLabelPair(gt: ArrayInput, seg: ArrayInput, file?: string): LabelPair {
  checkArray(gt, 'ground truth', file);
  checkArray(seg, 'prediction', file);
  const opts = file ? { file } : {};
  if (gt.shape.length !== seg.shape.length || gt.shape.some((s, i) => s !== seg.shape[i])) {
    throw new InputError(
      `prediction shape [${seg.shape.join(', ')}] differs from ground-truth shape [${gt.shape.join(', ')}]`,
      opts,
    );
  }
  const maxLabel = maxOf(gt.data);
  if (maxLabel > MAX_LABEL) {
    throw new InputError(
      `ground truth has label ${maxLabel}; at most ${MAX_LABEL} labels are supported`,
      opts,
    );
  }
  if (!Number.isFinite(maxLabel) || !Number.isInteger(maxLabel)) {
    throw new InputError(`ground truth does not hold integer labels`, opts);
  }
  const wide = maxLabel > 255;
  return {
    gt: convert(gt.data, maxLabel, wide),
    seg: convert(seg.data, maxLabel, wide),
    shape: [...gt.shape],
    maxLabel,
  };
}
