/**
 * Sørensen–Dice coefficient of two binary masks, as `compute_dice_coefficient` of the challenge:
 * 2|A∩B| / (|A| + |B|), NaN when both masks are empty.
 */
import { overlapCounts } from './overlap.js';

/** DSC from voxel counts: NaN when `sizeA + sizeB` is 0. */
export function diceFromCounts(intersection: number, sizeA: number, sizeB: number): number {
  const sum = sizeA + sizeB;
  if (sum === 0) return NaN;
  return (2 * intersection) / sum;
}

/** DSC of two binary masks (any non-zero element is foreground) of the same length. */
export function dice(maskGt: ArrayLike<number>, maskPred: ArrayLike<number>): number {
  const { a, b, ab } = overlapCounts(maskGt, maskPred, 'dice');
  return diceFromCounts(ab, a, b);
}
