import { InputError } from '@mcp-medsam/core/common';

/** Foreground sizes and overlap of two binary masks (any non-zero element is foreground). */
export function overlapCounts(
  maskGt: ArrayLike<number>,
  maskPred: ArrayLike<number>,
  what: string,
): { a: number; b: number; ab: number } {
  if (maskGt.length !== maskPred.length) {
    throw new InputError(`${what}: masks differ in size (${maskGt.length} vs ${maskPred.length})`);
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
  return { a, b, ab };
}
