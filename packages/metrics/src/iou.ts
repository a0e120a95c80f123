/** Intersection over union (Jaccard index) |A∩B| / |A∪B|; NaN when both masks are empty. */
import { InputError } from '@mcp-medsam/core/common';

/** IoU from voxel counts: NaN when the union is empty. */
export function iouFromCounts(intersection: number, sizeA: number, sizeB: number): number {
  const union = sizeA + sizeB - intersection;
  if (union === 0) return NaN;
  return intersection / union;
}

/** IoU of two binary masks (any non-zero element is foreground) of the same length. */
export function iou(maskGt: ArrayLike<number>, maskPred: ArrayLike<number>): number {
  if (maskGt.length !== maskPred.length) {
    throw new InputError(`iou: masks differ in size (${maskGt.length} vs ${maskPred.length})`);
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
  return iouFromCounts(ab, a, b);
}
