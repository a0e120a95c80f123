/**
 * Resize-longest-side, as MCP-MedSAM's pre-processing does it (spec §10 step 5, §11.1).
 */
import { InputError } from '@mcp-medsam/core/common';
import type { NdArray } from '../dtype.js';
import { hwcShape } from './common.js';
import { resizeArea } from './inter_area.js';

/** Target size of resize-longest-side. */
export interface LongestSideSize {
  /** `target / max(H, W)` (double). */
  scale: number;
  /** `int(H * scale + 0.5)` */
  newH: number;
  /** `int(W * scale + 0.5)` */
  newW: number;
}

/**
 * `s = target / max(H, W)`, `newH = int(H*s + 0.5)`, `newW = int(W*s + 0.5)`. Throws an InputError
 * when a side rounds to 0 (an image of 1 x N with N > 2*target: OpenCV refuses it too).
 */
export function longestSideSize(h: number, w: number, target = 256): LongestSideSize {
  if (!Number.isSafeInteger(h) || !Number.isSafeInteger(w) || h <= 0 || w <= 0) {
    throw new InputError(`resizeLongestSide: bad image size ${h} x ${w}`);
  }
  if (!Number.isSafeInteger(target) || target <= 0)
    throw new InputError(`resizeLongestSide: bad target ${target}`);
  const scale = target / Math.max(h, w);
  const newH = Math.trunc(h * scale + 0.5);
  const newW = Math.trunc(w * scale + 0.5);
  if (newH === 0 || newW === 0) {
    throw new InputError(
      `resizeLongestSide: a ${h} x ${w} image resized to longest side ${target} would be ${newH} x ${newW}; ` +
        `the original (cv2.resize) cannot process an aspect ratio beyond ${2 * target}:1`,
    );
  }
  return { scale, newH, newW };
}

/**
 * Resize a uint8 (H,W) or (H,W,C) image so that its longest side is `target`, with cv2
 * INTER_AREA (bit-exact). The output keeps the layout.
 */
export function resizeLongestSide(img: NdArray, target = 256): NdArray<'uint8'> {
  const { h, w } = hwcShape(img, 'resizeLongestSide', { dtypes: ['uint8'], channels: [1, 3, 4] });
  const { newH, newW } = longestSideSize(h, w, target);
  return resizeArea(img, newH, newW);
}
