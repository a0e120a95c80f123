/** Intersection over union (Jaccard index) |A∩B| / |A∪B|; NaN when both masks are empty. */
import { overlapCounts } from './overlap.js';

/** IoU from voxel counts: NaN when the union is empty. */
export function iouFromCounts(intersection: number, sizeA: number, sizeB: number): number {
  const union = sizeA + sizeB - intersection;
  if (union === 0) return NaN;
  return intersection / union;
}

/** IoU of two binary masks (any non-zero element is foreground) of the same length. */
export function iou(maskGt: ArrayLike<number>, maskPred: ArrayLike<number>): number {
  const { a, b, ab } = overlapCounts(maskGt, maskPred, 'iou');
  return iouFromCounts(ab, a, b);
}
