/**
 * Sørensen–Dice coefficient of two binary masks, as `compute_dice_coefficient` of the challenge:
 * 2|A∩B| / (|A| + |B|), NaN when both masks are empty.
 */
import { InputError } from '@mcp-medsam/core/common';

/** DSC from voxel counts: NaN when `sizeA + sizeB` is 0. */
export function diceFromCounts(intersection: number, sizeA: number, sizeB: number): number {
  const sum = sizeA + sizeB;
  if (sum === 0) return NaN;
  return (2 * intersection) / sum;
}

/** DSC of two binary masks (any non-zero element is foreground) of the same length. */
export function dice(maskGt: ArrayLike<number>, maskPred: ArrayLike<number>): number {
  if (maskGt.length !== maskPred.length) {
    throw new InputError(`dice: masks differ in size (${maskGt.length} vs ${maskPred.length})`);
  }
  let a = 0;
  let b = 0;
  let ab = 0;
  for (let i = 0; i < maskGt.length; i++) {
    const x = maskGt[i] ? 1 : 0;
    const y = maskPred[i] ? 1 : 0;
    a += x;
    b += y;
    ab += x & y;
  }
  return diceFromCounts(ab, a, b);
}
