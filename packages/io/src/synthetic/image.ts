/** Float planes (0..255 scale) to the uint8 arrays of a challenge case. */
import { ndarray, type NdArray } from '../dtype.js';

function u8(x: number): number {
  return x <= 0 ? 0 : x >= 255 ? 255 : (x + 0.5) | 0;
}

/** A grey plane as (H,W,3) uint8, the channel repeated (the challenge stores 2D images as RGB). */
export function greyImage(v: Float32Array, h: number, w: number): NdArray<'uint8'> {
  const out = ndarray('uint8', [h, w, 3]);
  const d = out.data;
  for (let i = 0, j = 0; i < h * w; i++, j += 3) d[j] = d[j + 1] = d[j + 2] = u8(v[i]);
  return out;
}

/** Three planes as (H,W,3) uint8. */
export function rgbImage(
  r: Float32Array,
  g: Float32Array,
  b: Float32Array,
  h: number,
  w: number,
): NdArray<'uint8'> {
  const out = ndarray('uint8', [h, w, 3]);
  const d = out.data;
  for (let i = 0, j = 0; i < h * w; i++, j += 3) {
    d[j] = u8(r[i]);
    d[j + 1] = u8(g[i]);
    d[j + 2] = u8(b[i]);
  }
  return out;
}

/** A volume (D·H·W values) as (D,H,W) uint8. */
export function volumeImage(v: Float32Array, d: number, h: number, w: number): NdArray<'uint8'> {
  const out = ndarray('uint8', [d, h, w]);
  for (let i = 0; i < v.length; i++) out.data[i] = u8(v[i]);
  return out;
}
