/**
 * Scoring of one case the way the challenge's `compute_metrics` does it: labels 1..gt.max(),
 * per-label DSC and NSD averaged with `np.mean`, NSD only when the case DSC exceeds the gate.
 */
import { InputError } from '@mcp-medsam/core/common';
import { diceFromCounts } from './dice.js';
import { iouFromCounts } from './iou.js';
import { robustHausdorff } from './hausdorff.js';
import { surfaceDiceAtTolerance } from './nsd.js';
import { npMean } from './numeric.js';
import { probeRadius, surfaceDiceByProbing3d } from './surface/tolerance.js';
import { toLabelPair, type ArrayInput, type LabelPair } from './labels.js';
import {
  surfaceDistances2d,
  surfaceDistances3d,
  type Box,
  type LabelData,
  type Surface2d,
  type SurfaceDistances,
} from './surface/distances.js';

/** Options of `scoreCase`; the defaults reproduce the challenge. */
export interface ScoreOptions {
  /**
   * Voxel spacing. 3D: the npz `spacing` as stored (x, y, z). 2D: ignored by the challenge
   * (always [1, 1]); used with `surface2d` or when given explicitly as 2 values.
   */
  spacing?: readonly number[];
  /**
   * 'challenge' (default): element k of `spacing` is applied to array axis k, unswapped, as the
   * challenge does (x spacing on the slice axis). 'xyz': `spacing` is (x, y, z) and is reversed
   * onto the (D, H, W) axes, the textbook behaviour.
   */
  spacingOrder?: 'challenge' | 'xyz';
  /** NSD tolerance, in mm (3D) or pixels (2D). Default 2. */
  tolerance?: number;
  /** The case NSD is 0 unless the case DSC is above this. Default 0.2; `null` disables the gate. */
  nsdDscGate?: number | null;
  /**
   * 2D surface: 'slab' (default, the challenge: the mask as an (H, W, 1) slab, every foreground
   * pixel is surface) or 'contour' (textbook 2D contour).
   */
  surface2d?: Surface2d;
  /** Percentile of the robust Hausdorff distance; default 95. `false` skips it (NaN). */
  hausdorffPercent?: number | false;
  /** File name used in error messages. */
  file?: string;
}

/** Per-label and per-case results. Per-label NSD is computed for every label, without the gate. */
export interface CaseScore {
  /** 2 or 3. */
  dims: number;
  shape: number[];
  /** The scored labels, 1..gt.max(). */
  labels: number[];
  dscPerLabel: Float64Array;
  nsdPerLabel: Float64Array;
  iouPerLabel: Float64Array;
  hd95PerLabel: Float64Array;
  /** np.mean of the per-label DSC: NaN when a label is in neither map, or gt has no label. */
  dsc: number;
  /** Mean per-label NSD if the gate passes, otherwise 0 (as the challenge). */
  nsd: number;
  /** Mean per-label NSD without the gate. */
  nsdUngated: number;
  iou: number;
  hd95: number;
  /** The spacing applied to the array axes (3 values in 3D; 2D: [sy, sx]). */
  axisSpacing: number[];
}

/** Per-label voxel counts and bounding boxes, from one pass over both maps. */
export interface LabelStats {
  sizeGt: Float64Array;
  sizePred: Float64Array;
  intersection: Float64Array;
  /** Per label, per axis [min, max] of the union, or null when the label is in neither map. */
  boxes: (Box | null)[];
}

/** Counts and union bounding boxes of labels 1..maxLabel in one pass. */
export function labelStats(pair: LabelPair): LabelStats {
  const { gt, seg, shape, maxLabel } = pair;
  const L = Math.max(maxLabel, 0);
  const sizeGt = new Float64Array(L + 1);
  const sizePred = new Float64Array(L + 1);
  const inter = new Float64Array(L + 1);
  const nd = shape.length;
  const [D, H, W] = nd === 3 ? shape : [1, shape[0], shape[1]];
  // lo/hi per label for z, y, x
  const lo = new Int32Array((L + 1) * 3).fill(0x7fffffff);
  const hi = new Int32Array((L + 1) * 3).fill(-1);
  // x bounds are updated per voxel; z and y bounds once per row for the labels seen in it.
  const seenStamp = new Int32Array(L + 1).fill(-1);
  const seen = new Int32Array(L + 1);
  if (L > 0) {
    let i = 0;
    let rowId = 0;
    for (let z = 0; z < D; z++) {
      for (let y = 0; y < H; y++, rowId++) {
        let nSeen = 0;
        for (let x = 0; x < W; x++, i++) {
          const g = gt[i];
          const s = seg[i];
          if ((g | s) === 0) continue;
          if (g !== 0) {
            sizeGt[g]++;
            const o = g * 3 + 2;
            if (x < lo[o]) lo[o] = x;
            if (x > hi[o]) hi[o] = x;
            if (seenStamp[g] !== rowId) {
              seenStamp[g] = rowId;
              seen[nSeen++] = g;
            }
          }
          if (s !== 0 && s <= L) {
            sizePred[s]++;
            if (s === g) inter[s]++;
            else {
              const o = s * 3 + 2;
              if (x < lo[o]) lo[o] = x;
              if (x > hi[o]) hi[o] = x;
              if (seenStamp[s] !== rowId) {
                seenStamp[s] = rowId;
                seen[nSeen++] = s;
              }
            }
          }
        }
        for (let k = 0; k < nSeen; k++) {
          const o = seen[k] * 3;
          if (z < lo[o]) lo[o] = z;
          if (z > hi[o]) hi[o] = z;
          if (y < lo[o + 1]) lo[o + 1] = y;
          if (y > hi[o + 1]) hi[o + 1] = y;
        }
      }
    }
  }
  const boxes: (Box | null)[] = [null];
  for (let l = 1; l <= L; l++) {
    const o = l * 3;
    if (hi[o] < 0) boxes.push(null);
    else if (nd === 3)
      boxes.push([
        [lo[o], hi[o]],
        [lo[o + 1], hi[o + 1]],
        [lo[o + 2], hi[o + 2]],
      ]);
    else
      boxes.push([
        [lo[o + 1], hi[o + 1]],
        [lo[o + 2], hi[o + 2]],
      ]);
  }
  return { sizeGt, sizePred, intersection: inter, boxes };
}

function checkSpacing(spacing: readonly number[], n: number, file?: string): void {
  const opts = file ? { file } : {};
  if (spacing.length !== n || spacing.some((s) => typeof s !== 'number' || !Number.isFinite(s) || s <= 0)) {
    throw new InputError(`spacing must be ${n} finite positive numbers, got [${spacing.join(', ')}]`, opts);
  }
}

/** The spacing applied to each array axis for these options (validated). */
export function axisSpacing(dims: number, options: ScoreOptions = {}): number[] {
  const order = options.spacingOrder ?? 'challenge';
  if (dims === 3) {
    const sp = options.spacing ? [...options.spacing].map(Number) : [1, 1, 1];
    checkSpacing(sp, 3, options.file);
    return order === 'xyz' ? sp.reverse() : sp;
  }
  // 2D: the challenge scores every 2D case with spacing 1 (it never reads a 2D spacing). An
  // explicit 2-value spacing is applied to (H, W), reversed with 'xyz'.
  if (!options.spacing || options.spacing.length !== 2) return [1, 1];
  const two = [...options.spacing].map(Number);
  checkSpacing(two, 2, options.file);
  return order === 'xyz' ? two.reverse() : two;
}

/** Surface distances of one label of a validated pair. */
export function labelSurfaceDistances(
  gt: LabelData,
  seg: LabelData,
  shape: readonly number[],
  label: number,
  box: Box | null,
  spacing: readonly number[],
  surface2d: Surface2d = 'slab',
): SurfaceDistances {
  if (shape.length === 3) {
    return surfaceDistances3d(gt, seg, shape, label, box, [spacing[0], spacing[1], spacing[2]]);
  }
  return surfaceDistances2d(gt, seg, shape, label, box, [spacing[0], spacing[1]], surface2d);
}

/**
 * Scores one case: `gt` and `seg` are label maps (2D (H, W) or 3D (D, H, W)) with the same shape
 * and integer dtypes.
 */
export function scoreCase(gt: ArrayInput, seg: ArrayInput, options: ScoreOptions = {}): CaseScore {
  const pair = toLabelPair(gt, seg, options.file);
  const dims = pair.shape.length;
  const spacing = axisSpacing(dims, options);
  const tolerance = options.tolerance ?? 2.0;
  if (!(tolerance >= 0))
    throw new InputError(
      `tolerance must be >= 0, got ${tolerance}`,
      options.file ? { file: options.file } : {},
    );
  const gate = options.nsdDscGate === undefined ? 0.2 : options.nsdDscGate;
  const surface2d = options.surface2d ?? 'slab';
  const percent = options.hausdorffPercent ?? 95;

  const stats = labelStats(pair);
  const L = Math.max(pair.maxLabel, 0);
  const labels: number[] = [];
  const dscPerLabel = new Float64Array(L);
  const nsdPerLabel = new Float64Array(L);
  const iouPerLabel = new Float64Array(L);
  const hd95PerLabel = new Float64Array(L);
  for (let l = 1; l <= L; l++) {
    labels.push(l);
    const a = stats.sizeGt[l];
    const b = stats.sizePred[l];
    const ab = stats.intersection[l];
    dscPerLabel[l - 1] = diceFromCounts(ab, a, b);
    iouPerLabel[l - 1] = iouFromCounts(ab, a, b);
    if (percent === false && dims === 3 && probeRadius(tolerance, spacing)) {
      // No distances needed: decide "within tolerance" by probing (same value, much faster).
      const sp: [number, number, number] = [spacing[0], spacing[1], spacing[2]];
      nsdPerLabel[l - 1] = surfaceDiceByProbing3d(
        pair.gt,
        pair.seg,
        pair.shape,
        l,
        stats.boxes[l],
        sp,
        tolerance,
      );
      hd95PerLabel[l - 1] = NaN;
      continue;
    }
    const sd = labelSurfaceDistances(pair.gt, pair.seg, pair.shape, l, stats.boxes[l], spacing, surface2d);
    nsdPerLabel[l - 1] = surfaceDiceAtTolerance(sd, tolerance);
    hd95PerLabel[l - 1] = percent === false ? NaN : robustHausdorff(sd, percent);
  }
  const dsc = npMean(dscPerLabel);
  const nsdUngated = npMean(nsdPerLabel);
  const nsd = gate === null || dsc > gate ? nsdUngated : 0.0;
  return {
    dims,
    shape: pair.shape,
    labels,
    dscPerLabel,
    nsdPerLabel,
    iouPerLabel,
    hd95PerLabel,
    dsc,
    nsd,
    nsdUngated,
    iou: npMean(iouPerLabel),
    hd95: npMean(hd95PerLabel),
    axisSpacing: spacing,
  };
}
