/**
 * The inference script's pre- and post-processing (spec §11): image normalisation, box scaling,
 * content crops, logit post-processing and the mask boxes of the 3D propagation.
 */
import { InputError } from '@mcp-medsam/core/common';
import type { NdArray } from '../dtype.js';
import { resizeAntialiasRegionU8 } from '../resize/antialias_bilinear.js';
import { resizeBilinearPlanes } from '../resize/bilinear.js';
import { hwcShape } from '../resize/common.js';
import { resizeAreaU8 } from '../resize/inter_area.js';
import { longestSideSize } from '../resize/longest_side.js';
import { normalizeWasm } from '../kernels/normalize.js';

/** The model's input side. */
export const IMAGE_SIZE = 256;

/** A box `[x0, y0, x1, y1]` in pixels (x = column, y = row). */
export type Box = [number, number, number, number];

/** Result of `preprocessImage`. */
export interface PreprocessedImage {
  /** float32 (3,256,256), CHW, values in [0,1], zero padding at the bottom and right. */
  image: Float32Array;
  /** Size of the resized content inside the 256x256 frame. */
  newH: number;
  newW: number;
  /** `256 / max(H, W)` */
  scale: number;
  /** Original size. */
  h: number;
  w: number;
}

/**
 * Resize-longest-side (INTER_AREA), min-max normalisation and zero padding of raw uint8 HWC data
 * (C = 3, or C = 1 repeated to 3 channels), into `out` when given (3*size*size values).
 */
export function preprocessImageData(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  size = IMAGE_SIZE,
  out?: Float32Array,
): PreprocessedImage {
  if (c !== 1 && c !== 3) throw new InputError(`preprocessImage: expected 1 or 3 channels, got ${c}`);
  const { newH, newW, scale } = longestSideSize(h, w, size);
  const resized = resizeAreaU8(src, h, w, c, newH, newW);
  const image = normalizeAndPad(resized, newH, newW, c, size, out);
  return { image, newH, newW, scale, h, w };
}

/**
 * The second half of `preprocessImageData`: min-max normalisation of the resized uint8 content
 * (newH, newW, c) and zero padding into a float32 (3, size, size) frame (into `out` when given).
 * Split out so that a training loader can resize a case once and normalise it per sample.
 */
export function normalizeAndPad(
  resized: Uint8Array,
  newH: number,
  newW: number,
  c: number,
  size = IMAGE_SIZE,
  out?: Float32Array,
): Float32Array {
  return padNormalized(resized, newH, newW, c, normalizationTable(resized), size, out);
}

/**
 * The min-max normalisation of uint8 content as a 256-entry table: `(v - min) / max(max - min,
 * 1e-8)` in float64, then float32, over all values of `resized` (all channels).
 */
export function normalizationTable(resized: Uint8Array): Float32Array {
  // A presence table instead of running min/max compares: those branches mispredict on image
  // data and cost several times more than one store per value.
  const seen = new Uint8Array(256);
  for (let i = 0; i < resized.length; i++) seen[resized[i]] = 1;
  let lo = 0;
  while (lo < 255 && !seen[lo]) lo++;
  let hi = 255;
  while (hi > 0 && !seen[hi]) hi--;
  if (resized.length === 0) [lo, hi] = [255, 0];
  const range = Math.max(hi - lo, 1e-8);
  const lut = new Float32Array(256);
  for (let v = lo; v <= hi; v++) lut[v] = (v - lo) / range;
  return lut;
}

/**
 * `lut` applied to the resized content (newH, newW, c; c = 1 is repeated to 3 channels), zero
 * padded at the bottom and right into a float32 (3, size, size) frame, then optionally flipped
 * along the columns and/or rows of the whole padded frame (the training flips, spec §10.2 step 8:
 * the padding moves with them). Into `out` when given.
 */
export function padNormalized(
  resized: Uint8Array,
  newH: number,
  newW: number,
  c: number,
  lut: Float32Array,
  size = IMAGE_SIZE,
  out?: Float32Array,
  flips: { flipH?: boolean; flipV?: boolean } = {},
): Float32Array {
  if (newH > size || newW > size || resized.length < newH * newW * c)
    throw new InputError(`preprocessImage: ${newH} x ${newW} x ${c} content does not fit the ${size} frame`);
  const plane = size * size;
  if (out && out.length < 3 * plane) throw new InputError(`preprocessImage: output buffer too small`);
  if (c !== 1 && c !== 3) throw new InputError(`preprocessImage: expected 1 or 3 channels, got ${c}`);
  const wasm = normalizeWasm();
  if (wasm) {
    const r = wasm.pad(resized, newH, newW, c, lut, size, out, !!flips.flipH, !!flips.flipV);
    if (r) return r;
  }
  const image = out ?? new Float32Array(3 * plane);
  if (out) image.fill(0, 0, 3 * plane);
  const p1 = plane;
  const p2 = 2 * plane;
  for (let y = 0; y < newH; y++) {
    let p = y * newW * c;
    const row = (flips.flipV ? size - 1 - y : y) * size;
    // Output index of column x: o0 + dx * x.
    const o0 = flips.flipH ? row + size - 1 : row;
    const dx = flips.flipH ? -1 : 1;
    if (c === 3) {
      for (let x = 0, o = o0; x < newW; x++, p += 3, o += dx) {
        image[o] = lut[resized[p]];
        image[p1 + o] = lut[resized[p + 1]];
        image[p2 + o] = lut[resized[p + 2]];
      }
    } else {
      for (let x = 0, o = o0; x < newW; x++, p++, o += dx) {
        const v = lut[resized[p]];
        image[o] = v;
        image[p1 + o] = v;
        image[p2 + o] = v;
      }
    }
  }
  return image;
}

/**
 * The inference pre-processing of one image (spec §11.1 step 2, = training step 5 without
 * flips): `img_3c` uint8 (H,W,3) — or (H,W) grey, repeated to 3 channels — resized so that its
 * longest side is 256 with cv2 INTER_AREA, min-max normalised over the whole resized array (all
 * channels, in float64, then float32) and zero padded at the bottom and right. Bit-exact.
 */
export function preprocessImage(img: NdArray, size = IMAGE_SIZE): PreprocessedImage {
  const { h, w, c } = hwcShape(img, 'preprocessImage', { dtypes: ['uint8'], channels: [1, 3] });
  return preprocessImageData(img.data as Uint8Array, h, w, c, size);
}

/**
 * Scale a box at original resolution to the 256 frame: `v * (256 / max(H, W))` per coordinate,
 * truncated toward zero with `truncate: true` (2D, the 3D middle slice and the upward fallback),
 * left as a float otherwise (the 3D downward fallback, spec §11.2). The prompt encoder gets these
 * values as float32.
 */
export function scaleBox(
  box: ArrayLike<number | bigint>,
  h: number,
  w: number,
  options: { truncate?: boolean; size?: number } = {},
): Box {
  const { truncate = true, size = IMAGE_SIZE } = options;
  if (box.length !== 4) throw new InputError(`scaleBox: expected [x0, y0, x1, y1], got ${box.length} values`);
  if (!(h > 0 && w > 0)) throw new InputError(`scaleBox: bad image size ${h} x ${w}`);
  const ratio = size / Math.max(h, w);
  const out = [0, 0, 0, 0] as Box;
  for (let i = 0; i < 4; i++) {
    const v = Number(box[i]);
    if (!Number.isFinite(v)) throw new InputError(`scaleBox: box value ${String(box[i])} is not finite`);
    out[i] = truncate ? Math.trunc(v * ratio) : v * ratio;
  }
  return out;
}

/** A content crop: float32 (C,size,size). */
export interface ContentCrop {
  data: Float32Array;
  shape: [number, number, number];
  /** True when the box selected no pixel: `data` is then all zeros (as training falls back to). */
  empty: boolean;
}

/**
 * The content crop of the prompt encoder / CLIP (spec §11.1 step 3.1, training step 11):
 * `img[y0:y1, x0:x1]` (half-open, raw values), ToTensor (/255) and antialiased bilinear resize to
 * size x size (64 for the crop net, 224 for CLIP). Coordinates must be non-negative integers;
 * coordinates past the image are clipped, as python slicing does. An empty crop (x1 <= x0 or
 * y1 <= y0 after clipping) gives zeros and `empty: true` (the original inference raises there;
 * training uses zeros). Also accepts several sizes at once (`sizes` array) sharing the ToTensor.
 */
export function cropContent(img: NdArray, box: ArrayLike<number | bigint>, size: number): ContentCrop;
export function cropContent(
  img: NdArray,
  box: ArrayLike<number | bigint>,
  size: readonly number[],
): ContentCrop[];
export function cropContent(
  img: NdArray,
  box: ArrayLike<number | bigint>,
  size: number | readonly number[],
): ContentCrop | ContentCrop[] {
  const { h, w, c } = hwcShape(img, 'cropContent', { dtypes: ['uint8'] });
  const sizes = typeof size === 'number' ? [size] : size;
  const out = cropContentData(img.data as Uint8Array, h, w, c, box, sizes);
  return typeof size === 'number' ? out[0] : out;
}

/** `cropContent` on raw uint8 HWC data. */
export function cropContentData(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  box: ArrayLike<number | bigint>,
  sizes: readonly number[],
  options: { flipH?: boolean; flipV?: boolean } = {},
): ContentCrop[] {
  if (box.length !== 4)
    throw new InputError(`cropContent: expected [x0, y0, x1, y1], got ${box.length} values`);
  const b = Array.from({ length: 4 }, (_, i) => Number(box[i]));
  if (!b.every((v) => Number.isSafeInteger(v) && v >= 0)) {
    throw new InputError(`cropContent: box [${b.join(', ')}] must hold non-negative integers`);
  }
  for (const s of sizes) {
    if (!Number.isSafeInteger(s) || s <= 0) throw new InputError(`cropContent: bad crop size ${s}`);
  }
  const x0 = Math.min(b[0], w);
  const y0 = Math.min(b[1], h);
  const x1 = Math.min(b[2], w);
  const y1 = Math.min(b[3], h);
  if (x1 <= x0 || y1 <= y0) {
    return sizes.map((s) => ({ data: new Float32Array(c * s * s), shape: [c, s, s], empty: true }));
  }
  const data = resizeAntialiasRegionU8(src, h, w, c, [x0, y0, x1, y1], sizes, options);
  return sizes.map((s, i) => ({ data: data[i], shape: [c, s, s], empty: false }));
}

/** `1/(1+exp(-x)) > 0.5` in float32, as torch's `sigmoid(x) > 0.5` rounds it. */
export function sigmoidAboveHalf(x: number): boolean {
  return Math.fround(1 / Math.fround(1 + Math.fround(Math.exp(-x)))) > 0.5;
}

/** Options of `postprocessLogits`. */
export interface PostprocessOptions {
  /** Also return the upsampled logits (float32 (H,W)). */
  keepLogits?: boolean;
  /** Side of the square low-resolution logits (default 256). */
  size?: number;
}

/** Result of `postprocessLogits`. */
export interface PostprocessedMask {
  /** uint8 (H,W) 0/1. */
  mask: Uint8Array;
  /** Upsampled logits (H,W), when asked for. */
  logits?: Float32Array;
}

/**
 * The inference post-processing (spec §11.1 step 3.4): crop the 256x256 low-resolution logits to
 * [:newH, :newW], `F.interpolate(..., (H, W), bilinear, align_corners=False)`, then
 * `sigmoid > 0.5` in float32 (a logit of +1e-7 is still background). Returns the uint8 mask.
 */
export function postprocessLogits(
  lowres: Float32Array,
  newH: number,
  newW: number,
  h: number,
  w: number,
  options: PostprocessOptions = {},
): PostprocessedMask {
  const size = options.size ?? IMAGE_SIZE;
  if (lowres.length < size * size) {
    throw new InputError(`postprocessLogits: expected ${size}x${size} logits, got ${lowres.length} values`);
  }
  if (!(newH > 0 && newW > 0 && newH <= size && newW <= size)) {
    throw new InputError(`postprocessLogits: bad content size ${newH} x ${newW} for ${size}x${size} logits`);
  }
  const up = resizeBilinearPlanes(lowres, 1, newH, newW, h, w, { rowStride: size });
  const mask = new Uint8Array(h * w);
  // sigmoid(x) > 0.5 in float32 holds exactly for x above a tiny positive threshold; the
  // float32 evaluation is only needed near 0.
  for (let i = 0; i < mask.length; i++) {
    const v = up[i];
    mask[i] = v > 1e-3 ? 1 : v <= 0 ? 0 : sigmoidAboveHalf(v) ? 1 : 0;
  }
  return options.keepLogits ? { mask, logits: up } : { mask };
}

/** Options of `bboxOfMask`. */
export interface BboxOptions {
  /** Added to each side (subtracted from x0, y0; added to x1, y1). Default 0. */
  margin?: number;
  /** Clamp x1 to this and y1 to `clampTo.height` (default the mask's W and H; 256 for the 256 frame). */
  clampTo?: number | { width: number; height: number };
}

/**
 * Bounding box `[x0, y0, x1, y1]` of the non-zero pixels of an (H,W) mask: min/max column and
 * row (inclusive), then `x0 = max(0, x0 - margin)`, `x1 = min(W, x1 + margin)` and so on (clamped
 * to W and H, not W-1: spec §11.2). Null when the mask is empty.
 */
export function bboxOfMask(
  mask: ArrayLike<number>,
  h: number,
  w: number,
  margin: number | BboxOptions = 0,
  clampTo?: number | { width: number; height: number },
): Box | null {
  const opts: BboxOptions = typeof margin === 'number' ? { margin, clampTo } : margin;
  const m = opts.margin ?? 0;
  const ct = opts.clampTo;
  const cw = ct === undefined ? w : typeof ct === 'number' ? ct : ct.width;
  const chh = ct === undefined ? h : typeof ct === 'number' ? ct : ct.height;
  if (mask.length < h * w)
    throw new InputError(`bboxOfMask: mask has ${mask.length} values, ${h} x ${w} needs ${h * w}`);
  let x0 = w;
  let x1 = -1;
  let y0 = h;
  let y1 = -1;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    let first = -1;
    for (let x = 0; x < w; x++) {
      if (mask[row + x]) {
        first = x;
        break;
      }
    }
    if (first < 0) continue;
    let last = first;
    for (let x = w - 1; x > first; x--) {
      if (mask[row + x]) {
        last = x;
        break;
      }
    }
    if (y0 === h) y0 = y;
    y1 = y;
    if (first < x0) x0 = first;
    if (last > x1) x1 = last;
  }
  if (y1 < 0) return null;
  return [Math.max(0, x0 - m), Math.max(0, y0 - m), Math.min(cw, x1 + m), Math.min(chh, y1 + m)];
}

/** Zero-pad an (H,W) or (H,W,C) image at the bottom and right to (size,size[,C]) (same dtype). */
export function padBottomRight<T extends NdArray>(img: T, size = IMAGE_SIZE): T {
  const { h, w, c } = hwcShape(img, 'padBottomRight');
  if (h > size || w > size)
    throw new InputError(`padBottomRight: ${h} x ${w} does not fit in ${size} x ${size}`);
  const Ctor = img.data.constructor as new (n: number) => typeof img.data;
  const out = new Ctor(size * size * c);
  const o = out as unknown as Float64Array;
  const s = img.data as unknown as Float64Array;
  for (let y = 0; y < h; y++) {
    for (let i = 0; i < w * c; i++) o[y * size * c + i] = s[y * w * c + i];
  }
  return { dtype: img.dtype, shape: img.shape.length === 2 ? [size, size] : [size, size, c], data: out } as T;
}
