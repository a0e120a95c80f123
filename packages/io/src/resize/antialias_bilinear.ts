/**
 * torchvision `ToTensor()` followed by `Resize([S, S], BILINEAR, antialias=True)` (spec §12.3), as
 * torch 1.13's CPU `_upsample_bilinear2d_aa` computes it: separable (width pass first, a pass
 * skipped when that size is unchanged), a triangle filter widened by the downscale factor, and
 * every weight computed in float32 with the same roundings as the C++ (`center`, `invscale`,
 * the filter argument and the normalisation are float32; the few int/double mixes of the
 * original are reproduced). The accumulation `out += w * x` is a fused multiply-add, as the
 * compiler contracts it in torch's AVX2 build (emulated: the float32 product is exact in double,
 * so `fround(w*x + acc)` rounds once, barring a double-rounding tie). Matches torchvision 0.14
 * within 2e-7; most outputs are bit-identical.
 */
import { InputError } from '@mcp-medsam/core/common';
import type { NdArray } from '../dtype.js';
import { checkTargetSize, hwcShape, TableCache } from './common.js';
import { antialiasWasm } from '../kernels/antialias.js';

const fround = Math.fround;

/** Per-axis antialias tables: window start and size, and `maxSize` weights per output index. */
export interface AaTable {
  xmin: Int32Array;
  xsize: Int32Array;
  maxSize: number;
  weights: Float32Array;
}

/** The antialiased-bilinear window and weights for n_in → n_out (float32 as torch computes them). */
export function antialiasTable(nIn: number, nOut: number): AaTable {
  return aaTabs.get(nIn, nOut, () => {
    const scale = fround(fround(nIn) / fround(nOut));
    const support = scale >= 1 ? scale : 1;
    const invscale = scale >= 1 ? fround(1 / scale) : 1;
    const maxSize = Math.ceil(support) * 2 + 1;
    const xmin = new Int32Array(nOut);
    const xsize = new Int32Array(nOut);
    const weights = new Float32Array(nOut * maxSize);
    for (let i = 0; i < nOut; i++) {
      const center = fround(scale * (i + 0.5));
      // int64(float - float + 0.5): the float difference, then + 0.5 in double, then truncation.
      const lo = Math.max(Math.trunc(fround(center - support) + 0.5), 0);
      const hi = Math.min(Math.trunc(fround(center + support) + 0.5), nIn);
      const size = Math.max(hi - lo, 0);
      xmin[i] = lo;
      xsize[i] = size;
      const base = i * maxSize;
      let total = 0;
      for (let j = 0; j < size; j++) {
        // (j + xmin - center + 0.5) * invscale: int→float subtraction in float32, the rest in
        // double, the filter argument rounded to float32; the filter `1 - |x|` rounded to float32.
        let x = fround((fround(j + lo - center) + 0.5) * invscale);
        if (x < 0) x = -x;
        const wgt = x < 1 ? fround(1 - x) : 0;
        weights[base + j] = wgt;
        total = fround(total + wgt);
      }
      if (total !== 0) for (let j = 0; j < size; j++) weights[base + j] = fround(weights[base + j] / total);
    }
    return { xmin, xsize, maxSize, weights };
  });
}

// Crop sides vary with the random margins, so a training run meets many (n_in, n_out) pairs:
// a larger cache than the other resizers' keeps most of them (a table is a few KB).
const aaTabs = new TableCache<AaTable>(512);

/**
 * Resize float32 planes `(planes, h, w)` (CHW, C-order) to `(planes, outH, outW)` with the
 * antialiased bilinear filter. `out` (optional) receives planes*outH*outW values.
 */
export function resizeAntialiasPlanes(
  src: Float32Array,
  planes: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
  out?: Float32Array,
): Float32Array {
  checkTargetSize(outH, outW, 'resizeAntialiasBilinear');
  if (!(h > 0 && w > 0 && planes >= 0) || src.length < planes * h * w) {
    throw new InputError(
      `resizeAntialiasBilinear: bad input of ${src.length} values for ${planes} x ${h} x ${w}`,
    );
  }
  const n = planes * outH * outW;
  const dst = out ?? new Float32Array(n);
  if (dst.length < n)
    throw new InputError(`resizeAntialiasBilinear: output buffer too small (${dst.length} < ${n})`);
  // Width pass (skipped when the width is unchanged).
  let mid = src;
  if (outW !== w) {
    mid = outH === h ? dst : new Float32Array(planes * h * outW);
    const tab = antialiasTable(w, outW);
    for (let r = 0; r < planes * h; r++) widthPassRow(src, r * w, tab, outW, mid, r * outW);
  }
  if (outH === h) {
    if (mid !== dst) dst.set(mid.subarray(0, n));
    return dst;
  }
  heightPass(mid, planes, h, outW, outH, dst);
  return dst;
}

/** One row of the width pass: `outW` values into `out` at `outOff` from the row at `inOff`. */
function widthPassRow(
  src: Float32Array,
  inOff: number,
  tab: AaTable,
  outW: number,
  out: Float32Array,
  outOff: number,
): void {
  const { xmin, xsize, maxSize, weights } = tab;
  for (let i = 0; i < outW; i++) {
    const p = inOff + xmin[i];
    const wb = i * maxSize;
    const size = xsize[i];
    let acc = fround(src[p] * weights[wb]);
    for (let j = 1; j < size; j++) acc = fround(src[p + j] * weights[wb + j] + acc); // fused
    out[outOff + i] = acc;
  }
}

/** The height pass of (planes, h, outW) into (planes, outH, outW): whole rows at a time, in the same per-element order (first term, then += w*x). */
function heightPass(
  mid: Float32Array,
  planes: number,
  h: number,
  outW: number,
  outH: number,
  dst: Float32Array,
): void {
  const { xmin, xsize, maxSize, weights } = antialiasTable(h, outH);
  for (let pl = 0; pl < planes; pl++) {
    const inPlane = pl * h * outW;
    const outPlane = pl * outH * outW;
    for (let i = 0; i < outH; i++) {
      const o = outPlane + i * outW;
      const wb = i * maxSize;
      const size = xsize[i];
      let p = inPlane + xmin[i] * outW;
      const w0 = weights[wb];
      for (let x = 0; x < outW; x++) dst[o + x] = fround(mid[p + x] * w0);
      for (let j = 1; j < size; j++) {
        p += outW;
        const wj = weights[wb + j];
        for (let x = 0; x < outW; x++) dst[o + x] = mid[p + x] * wj + dst[o + x]; // fused
      }
    }
  }
}

/**
 * `ToTensor()` of a region of a uint8 HWC image, optionally flipped, then one antialiased
 * resize to (c, s, s) for each of `sizes`: the same numbers as `toTensorU8` + `resizeAntialiasPlanes`
 * per size, without materialising the float crop (each source row is converted once, while it is
 * in cache, and feeds the width pass of every size). `region` = [x0, y0, x1, y1], half-open,
 * non-empty and inside the image. Runs the WebAssembly SIMD kernel when this thread can (see
 * `setWasmKernels`); its output is the JS path's, bit for bit.
 */
export function resizeAntialiasRegionU8(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  region: readonly [number, number, number, number],
  sizes: readonly number[],
  flips: { flipH?: boolean; flipV?: boolean } = {},
): Float32Array[] {
  const [x0, y0, x1, y1] = region;
  const ch = y1 - y0;
  const cw = x1 - x0;
  if (!(x0 >= 0 && y0 >= 0 && x1 <= w && y1 <= h && cw > 0 && ch > 0)) {
    throw new InputError(
      `resizeAntialiasRegion: region [${region.join(', ')}] is outside the ${h} x ${w} image or empty`,
    );
  }
  for (const s of sizes) checkTargetSize(s, s, 'resizeAntialiasRegion');
  const wasm = antialiasWasm();
  if (wasm) {
    const wTabs = sizes.map((s) => (s === cw ? null : antialiasTable(cw, s)));
    const hTabs = sizes.map((s) => (s === ch ? null : antialiasTable(ch, s)));
    const out = wasm.regionU8(src, w, c, region, sizes, wTabs, hTabs, !!flips.flipH, !!flips.flipV);
    if (out) return out;
  }
  return regionU8Js(src, w, c, region, sizes, flips);
}

/** The JS path of `resizeAntialiasRegionU8` (arguments checked). */
function regionU8Js(
  src: Uint8Array,
  w: number,
  c: number,
  region: readonly [number, number, number, number],
  sizes: readonly number[],
  flips: { flipH?: boolean; flipV?: boolean },
): Float32Array[] {
  const [x0, y0, x1, y1] = region;
  const ch = y1 - y0;
  const cw = x1 - x0;
  const lut = U8_OVER_255;
  const row = new Float32Array(cw);
  // Width-pass output (c, ch, s) per size; the crop's own values when the width is unchanged.
  const mids = sizes.map((s) => new Float32Array(c * ch * s));
  const tabs = sizes.map((s) => (s === cw ? null : antialiasTable(cw, s)));
  for (let y = 0; y < ch; y++) {
    const sy = flips.flipV ? y1 - 1 - y : y0 + y;
    for (let k = 0; k < c; k++) {
      let p = (sy * w + x0) * c + k;
      if (flips.flipH) for (let x = cw - 1; x >= 0; x--, p += c) row[x] = lut[src[p]];
      else for (let x = 0; x < cw; x++, p += c) row[x] = lut[src[p]];
      for (let t = 0; t < sizes.length; t++) {
        const s = sizes[t];
        const tab = tabs[t];
        const off = (k * ch + y) * s;
        if (tab) widthPassRow(row, 0, tab, s, mids[t], off);
        else mids[t].set(row, off);
      }
    }
  }
  return sizes.map((s, t) => {
    if (s === ch) return mids[t];
    const dst = new Float32Array(c * s * s);
    heightPass(mids[t], c, ch, s, s, dst);
    return dst;
  });
}

/**
 * `ToTensor()` of a uint8 HWC image or region: float32 CHW, value/255. `region` = [x0, y0, x1, y1]
 * (half-open, within the image) selects a crop without copying the image first.
 */
export function toTensorU8(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  region: readonly [number, number, number, number] = [0, 0, w, h],
): Float32Array {
  const [x0, y0, x1, y1] = region;
  const ch = y1 - y0;
  const cw = x1 - x0;
  if (!(x0 >= 0 && y0 >= 0 && x1 <= w && y1 <= h && cw >= 0 && ch >= 0)) {
    throw new InputError(`toTensor: region [${region.join(', ')}] is outside the ${h} x ${w} image`);
  }
  const out = new Float32Array(c * ch * cw);
  const plane = ch * cw;
  const lut = U8_OVER_255;
  for (let y = 0; y < ch; y++) {
    let p = ((y0 + y) * w + x0) * c;
    const o = y * cw;
    for (let x = 0; x < cw; x++) {
      for (let k = 0; k < c; k++) out[k * plane + o + x] = lut[src[p + k]];
      p += c;
    }
  }
  return out;
}

/** float32(v) / 255 in float32 for every uint8 v (torch's `img.float().div(255)`). */
const U8_OVER_255 = (() => {
  const t = new Float32Array(256);
  for (let v = 0; v < 256; v++) t[v] = v / 255;
  return t;
})();

/**
 * `ToTensor()`: a uint8 (H,W) or (H,W,C) image as float32 (C,H,W) / 255 (a grey image becomes
 * (1,H,W)).
 */
export function toTensor(img: NdArray): NdArray<'float32'> {
  const { h, w, c } = hwcShape(img, 'toTensor', { dtypes: ['uint8'] });
  return { dtype: 'float32', shape: [c, h, w], data: toTensorU8(img.data as Uint8Array, h, w, c) };
}

/**
 * torchvision `Resize([outH, outW], BILINEAR, antialias=True)` of a float32 (C,H,W) or (H,W)
 * array; the output keeps the layout.
 */
export function resizeAntialiasBilinear(arr: NdArray, outH: number, outW: number): NdArray<'float32'> {
  if (arr.dtype !== 'float32')
    throw new InputError(`resizeAntialiasBilinear: expected float32, got ${arr.dtype}`);
  const s = arr.shape;
  if (s.length !== 2 && s.length !== 3) {
    throw new InputError(`resizeAntialiasBilinear: expected (C,H,W) or (H,W), got shape [${s.join(', ')}]`);
  }
  const planes = s.length === 3 ? s[0] : 1;
  const h = s[s.length - 2];
  const w = s[s.length - 1];
  if (h <= 0 || w <= 0) {
    throw new InputError(
      `resizeAntialiasBilinear: input and output sizes must be greater than 0, got shape [${s.join(', ')}]`,
    );
  }
  const data = resizeAntialiasPlanes(arr.data as Float32Array, planes, h, w, outH, outW);
  return { dtype: 'float32', shape: s.length === 3 ? [planes, outH, outW] : [outH, outW], data };
}
