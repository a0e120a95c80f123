/**
 * Shape checks and a tiny table cache shared by the resizers.
 */
import { InputError } from '@mcp-medsam/core/common';
import type { DType, NdArray } from '../dtype.js';

/** An image laid out as rows x columns x channels (HWC, C-order). */
export interface HwcShape {
  h: number;
  w: number;
  c: number;
}

/** Check a target size: positive integers. */
export function checkTargetSize(outH: number, outW: number, what: string): void {
  if (!Number.isSafeInteger(outH) || !Number.isSafeInteger(outW) || outH <= 0 || outW <= 0) {
    throw new InputError(`${what}: the output size must be positive integers, got ${outH} x ${outW}`);
  }
}

/**
 * Read (H,W) or (H,W,C) with C in `channels`. Throws an InputError naming `what` otherwise, or for
 * an empty image or the wrong dtype.
 */
export function hwcShape(
  arr: NdArray,
  what: string,
  options: { dtypes?: readonly DType[]; channels?: readonly number[] } = {},
): HwcShape {
  const { dtypes, channels } = options;
  if (dtypes && !dtypes.includes(arr.dtype)) {
    throw new InputError(`${what}: expected dtype ${dtypes.join(' or ')}, got ${arr.dtype}`);
  }
  const s = arr.shape;
  if (s.length !== 2 && s.length !== 3) {
    throw new InputError(`${what}: expected an (H,W) or (H,W,C) image, got shape [${s.join(', ')}]`);
  }
  const [h, w] = s;
  const c = s.length === 3 ? s[2] : 1;
  if (channels && !channels.includes(c)) {
    throw new InputError(`${what}: expected ${channels.join(' or ')} channels, got shape [${s.join(', ')}]`);
  }
  if (h <= 0 || w <= 0 || c <= 0) throw new InputError(`${what}: empty image, shape [${s.join(', ')}]`);
  if (arr.data.length !== h * w * c) {
    throw new InputError(
      `${what}: data has ${arr.data.length} elements, shape [${s.join(', ')}] needs ${h * w * c}`,
    );
  }
  return { h, w, c };
}

/**
 * A small memo for per-axis tables keyed by (n_in, n_out): resizing many images of the same size
 * (volumes, batches) builds each table once. Bounded; the oldest entry is dropped first.
 */
export class TableCache<T> {
  private readonly map = new Map<string, T>();
  constructor(private readonly limit = 64) {}

  get(nIn: number, nOut: number, build: () => T): T {
    const key = `${nIn}:${nOut}`;
    let t = this.map.get(key);
    if (t === undefined) {
      t = build();
      if (this.map.size >= this.limit) this.map.delete(this.map.keys().next().value as string);
      this.map.set(key, t);
    }
    return t;
  }
}

/** Round half to even (what `cvRound` / `lrint` do in the default rounding mode). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // half up
  // Exactly halfway and rounded to odd: step back to the even neighbour.
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** Saturate to uint8 after round-half-even. */
export function saturateU8(x: number): number {
  const r = roundHalfEven(x);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}
