/** Checks of the arrays a pipeline is given, with errors that name the case. */
import { InputError } from '@mcp-medsam/core/common';
import { toFloat64, type NdArray } from '@mcp-medsam/io';

/** Integer box rows of an (N, k) array; non-integer, inverted or out-of-bounds boxes throw. */
export function readBoxes(
  boxes: NdArray,
  k: 4 | 6,
  limits: { w: number; h: number; d?: number },
  file?: string,
): number[][] {
  const s = boxes.shape;
  const n = s.length === 1 && s[0] === 0 ? 0 : s[0];
  if (n > 0 && (s.length !== 2 || s[1] !== k))
    throw new InputError(`'boxes' must be (N,${k}), got shape [${s.join(', ')}]`, { file });
  const v = toFloat64(boxes);
  const half = k / 2;
  const axes = k === 4 ? ['x', 'y'] : ['x', 'y', 'z'];
  const limit: Record<string, number> = { x: limits.w, y: limits.h, z: limits.d ?? 1 };
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row = Array.from(v.subarray(i * k, (i + 1) * k));
    const txt = `box ${i} [${row.join(', ')}]`;
    if (!row.every(Number.isSafeInteger)) throw new InputError(`${txt} must hold integers`, { file });
    axes.forEach((ax, j) => {
      const [lo, hi] = [row[j], row[j + half]];
      if (hi < lo) throw new InputError(`${txt} is inverted (${ax}_max < ${ax}_min)`, { file });
      if (hi === lo && ax !== 'z') throw new InputError(`${txt} is empty (${ax}_max = ${ax}_min)`, { file });
      // x and y are half-open pixel ranges. z0 is a slice index; z1 may be D, as io's case check
      // allows: the original's upward loop stops before z1 (range(zm, z1)), so it never reads it.
      if (lo < 0 || hi > limit[ax])
        throw new InputError(`${txt} is out of bounds (${ax} must lie in [0, ${limit[ax]}])`, { file });
      if (ax === 'z' && lo > limit.z - 1)
        throw new InputError(`${txt} is out of bounds (z_min must be below the slice count ${limit.z})`, {
          file,
        });
    });
    rows.push(row);
  }
  return rows;
}

/** The uint8 pixels of `imgs`, which must have one of `shapes`' ranks. */
export function uint8Pixels(imgs: NdArray, file?: string): Uint8Array {
  if (imgs.dtype !== 'uint8')
    throw new InputError(`'imgs' must be uint8 for inference, got ${imgs.dtype}`, { file });
  return imgs.data as Uint8Array;
}

/** Label array for `n` boxes: uint8 up to 255 boxes, else uint16 (the challenge's rule). */
export function labelArray(n: number, size: number): Uint8Array | Uint16Array {
  return n > 255 ? new Uint16Array(size) : new Uint8Array(size);
}
