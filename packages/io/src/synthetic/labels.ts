/**
 * The label map of a synthetic 2D image: placing targets without overlaps, and the per-target
 * numbers the generator's acceptance checks and the tests use (pixel counts, tight boxes, the
 * DSC of the box filled as the mask).
 */
import { InputError } from '@mcp-medsam/core/common';
import type { NdArray } from '../dtype.js';
import type { UniformSource } from './random.js';
import { moveShape, rasterize, scaleShape, type ShapeRaster, type ShapeSpec } from './shapes.js';

/** A label map being built, one label per placed structure. */
export class LabelCanvas {
  readonly gts: Uint8Array;
  /** Structure names; label l is `structures[l - 1]`. */
  readonly structures: string[] = [];

  constructor(
    readonly h: number,
    readonly w: number,
  ) {
    this.gts = new Uint8Array(h * w);
  }

  /**
   * Whether the zone ρ < `guard` of a raster stays off the image border, inside `allowed` (when
   * given, non-zero = allowed) and off every label except `within` (0: off every label).
   */
  fits(r: ShapeRaster, guard: number, allowed?: Uint8Array, within = 0): boolean {
    const { win, rho } = r;
    const { gts, w, h } = this;
    for (let y = 0; y < win.h; y++) {
      const yy = win.y0 + y;
      for (let x = 0; x < win.w; x++) {
        if (rho[y * win.w + x] >= guard) continue;
        const xx = win.x0 + x;
        if (xx === 0 || yy === 0 || xx === w - 1 || yy === h - 1) return false;
        const i = yy * w + xx;
        if (gts[i] !== within) return false;
        if (allowed && !allowed[i]) return false;
      }
    }
    return true;
  }

  /** Give the pixels ρ < 1 of a raster a new label (over any label there); returns the label. */
  add(r: ShapeRaster, name: string): number {
    const label = this.structures.length + 1;
    this.structures.push(name);
    const { win, rho } = r;
    for (let y = 0; y < win.h; y++) {
      const o = (win.y0 + y) * this.w + win.x0;
      for (let x = 0; x < win.w; x++) if (rho[y * win.w + x] < 1) this.gts[o + x] = label;
    }
    return label;
  }
}

/**
 * Try to put `spec` at centres drawn by `centre` until it fits the canvas (see
 * `LabelCanvas.fits`); every 12 failures the shape shrinks by 15 %. Returns the raster, or null
 * after `tries` attempts.
 */
export function placeShape(
  canvas: LabelCanvas,
  spec: ShapeSpec,
  centre: () => [number, number],
  opts: { guard?: number; allowed?: Uint8Array; within?: number; tries?: number; pad?: number } = {},
): ShapeRaster | null {
  const tries = opts.tries ?? 36;
  const guard = opts.guard ?? 1.25;
  const within = opts.within ?? 0;
  const { allowed, gts, w, h } = { allowed: opts.allowed, gts: canvas.gts, w: canvas.w, h: canvas.h };
  let s = spec;
  for (let i = 0; i < tries; i++) {
    if (i > 0 && i % 12 === 0) s = scaleShape(s, 0.85);
    const [cx, cy] = centre();
    // Most bad centres are caught here, before the shape is rasterised.
    const ci = Math.round(cy) * w + Math.round(cx);
    if (cx < 1 || cy < 1 || cx >= w - 1 || cy >= h - 1 || gts[ci] !== within || (allowed && !allowed[ci]))
      continue;
    const r = rasterize(moveShape(s, cx, cy), h, w, opts.pad ?? guard + 0.05);
    if (canvas.fits(r, guard, allowed, within)) return r;
  }
  return null;
}

/** A random pixel of a raster with ρ below `level` (for placing one structure inside another). */
export function pointInside(rng: UniformSource, r: ShapeRaster, level: number): [number, number] {
  const { win, rho } = r;
  for (let i = 0; i < 200; i++) {
    const x = Math.floor(rng.random() * win.w);
    const y = Math.floor(rng.random() * win.h);
    if (rho[y * win.w + x] < level) return [win.x0 + x, win.y0 + y];
  }
  // Fall back to the deepest pixel.
  let best = 0;
  for (let i = 1; i < rho.length; i++) if (rho[i] < rho[best]) best = i;
  return [win.x0 + (best % win.w), win.y0 + Math.floor(best / win.w)];
}

/** Per-label numbers of a label map. */
export interface TargetStats {
  label: number;
  /** Pixels (voxels) of the label. */
  count: number;
  /** Tight box, max inclusive: x0, y0, z0, x1, y1, z1 (z 0 for 2D). */
  box: [number, number, number, number, number, number];
  /** Pixels in the smallest non-empty slice (the count itself for 2D). */
  minSliceCount: number;
  /** DSC of the tight box filled as the mask: 2·count / (count + box volume). */
  boxFillDice: number;
}

/**
 * Statistics of every label 1..max of a (H,W) or (D,H,W) label map, in label order; a label
 * with no pixel has count 0.
 */
export function targetStats(gts: Uint8Array, shape: readonly number[]): TargetStats[] {
  const [d, h, w] = shape.length === 2 ? [1, shape[0], shape[1]] : shape;
  let max = 0;
  for (let i = 0; i < gts.length; i++) if (gts[i] > max) max = gts[i];
  const count = new Float64Array(max + 1);
  const lo = [
    new Int32Array(max + 1).fill(w),
    new Int32Array(max + 1).fill(h),
    new Int32Array(max + 1).fill(d),
  ];
  const hi = [
    new Int32Array(max + 1).fill(-1),
    new Int32Array(max + 1).fill(-1),
    new Int32Array(max + 1).fill(-1),
  ];
  const slice = new Float64Array(max + 1);
  const minSlice = new Float64Array(max + 1).fill(Infinity);
  for (let z = 0, i = 0; z < d; z++) {
    slice.fill(0);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++, i++) {
        const l = gts[i];
        if (l === 0) continue;
        count[l]++;
        slice[l]++;
        if (x < lo[0][l]) lo[0][l] = x;
        if (x > hi[0][l]) hi[0][l] = x;
        if (y < lo[1][l]) lo[1][l] = y;
        if (y > hi[1][l]) hi[1][l] = y;
        if (z < lo[2][l]) lo[2][l] = z;
        if (z > hi[2][l]) hi[2][l] = z;
      }
    for (let l = 1; l <= max; l++) if (slice[l] > 0 && slice[l] < minSlice[l]) minSlice[l] = slice[l];
  }
  const out: TargetStats[] = [];
  for (let l = 1; l <= max; l++) {
    const n = count[l];
    const box: TargetStats['box'] = [lo[0][l], lo[1][l], lo[2][l], hi[0][l], hi[1][l], hi[2][l]];
    const vol = n === 0 ? 0 : (box[3] - box[0] + 1) * (box[4] - box[1] + 1) * (box[5] - box[2] + 1);
    out.push({
      label: l,
      count: n,
      box,
      minSliceCount: n === 0 ? 0 : minSlice[l],
      boxFillDice: n === 0 ? 0 : (2 * n) / (n + vol),
    });
  }
  return out;
}

/**
 * DSC of each label's tight box filled as its mask (the "box baseline" of a box-prompted
 * segmenter), for a (H,W) or (D,H,W) uint8 label map; labels 1..max in order.
 */
export function boxFillDice(gts: NdArray): number[] {
  if (gts.dtype !== 'uint8') throw new InputError(`boxFillDice: expected uint8 labels, got ${gts.dtype}`);
  if (gts.shape.length !== 2 && gts.shape.length !== 3)
    throw new InputError(`boxFillDice: expected (H,W) or (D,H,W), got [${gts.shape.join(', ')}]`);
  return targetStats(gts.data as Uint8Array, gts.shape).map((s) => s.boxFillDice);
}
