/**
 * `cv2.resize(img, (outW, outH), interpolation=cv2.INTER_AREA)` for uint8 images, bit-exact with
 * OpenCV 4.6 (spec §12.1). Layout (H,W) or (H,W,C), C in {1,3,4} (1 and 3 are verified against
 * OpenCV; 4 follows the same code paths).
 */
import { InputError } from '@mcp-medsam/core/common';
import type { NdArray } from '../dtype.js';
import { checkTargetSize, hwcShape, roundHalfEven, TableCache } from './common.js';
import { areaWasm } from '../kernels/area.js';

const DBL_EPSILON = 2.220446049250313e-16;
const fround = Math.fround;

/** One axis of the general-shrink tables: entries (dst index, src index, weight), in order. */
interface AreaTab {
  n: number;
  di: Int32Array;
  si: Int32Array;
  alpha: Float32Array;
}

/** OpenCV's `computeResizeAreaTab` (indices in elements of a row with `cn` channels). */
function computeAreaTab(nIn: number, nOut: number, scale: number): AreaTab {
  const di = new Int32Array(nIn * 2 + 2);
  const si = new Int32Array(nIn * 2 + 2);
  const alpha = new Float32Array(nIn * 2 + 2);
  let k = 0;
  for (let d = 0; d < nOut; d++) {
    const f1 = d * scale;
    const f2 = f1 + scale;
    const cell = Math.min(scale, nIn - f1);
    let i1 = Math.ceil(f1);
    let i2 = Math.floor(f2);
    i2 = Math.min(i2, nIn - 1);
    i1 = Math.min(i1, i2);
    if (i1 - f1 > 1e-3) {
      di[k] = d;
      si[k] = i1 - 1;
      alpha[k++] = (i1 - f1) / cell;
    }
    for (let i = i1; i < i2; i++) {
      di[k] = d;
      si[k] = i;
      alpha[k++] = 1.0 / cell;
    }
    if (f2 - i2 > 1e-3) {
      di[k] = d;
      si[k] = i2;
      alpha[k++] = Math.min(Math.min(f2 - i2, 1), cell) / cell;
    }
  }
  return { n: k, di: di.subarray(0, k), si: si.subarray(0, k), alpha: alpha.subarray(0, k) };
}

/** One axis of the enlarging ("area" bilinear) tables. */
interface LinearTab {
  i0: Int32Array;
  i1: Int32Array;
  a0: Int32Array;
  a1: Int32Array;
}

/**
 * OpenCV's area-mode coefficients for INTER_AREA enlarging. `clampLast` applies the
 * `sx >= n_in-1 → f = 0` rule (the horizontal axis); rows only clip the second index.
 */
function computeLinearTab(nIn: number, nOut: number, clampLast: boolean): LinearTab {
  const inv = nOut / nIn;
  const scale = 1 / inv;
  const i0 = new Int32Array(nOut);
  const i1 = new Int32Array(nOut);
  const a0 = new Int32Array(nOut);
  const a1 = new Int32Array(nOut);
  for (let d = 0; d < nOut; d++) {
    let s = Math.floor(d * scale);
    let f = fround(d + 1 - (s + 1) * inv);
    f = f <= 0 ? 0 : fround(f - Math.floor(f));
    if (clampLast && s >= nIn - 1) {
      s = nIn - 1;
      f = 0;
    }
    const s0 = Math.min(Math.max(s, 0), nIn - 1);
    i0[d] = s0;
    i1[d] = Math.min(s + 1, nIn - 1);
    a0[d] = roundHalfEven(fround(1 - f) * 2048);
    a1[d] = roundHalfEven(f * 2048);
  }
  return { i0, i1, a0, a1 };
}

const areaTabs = new TableCache<AreaTab>();
const linearTabsX = new TableCache<LinearTab>();
const linearTabsY = new TableCache<LinearTab>();

/**
 * INTER_AREA on raw uint8 HWC data. `out` (optional) receives outH*outW*c values.
 * Throws an InputError for sizes that are not positive integers.
 */
export function resizeAreaU8(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  outH: number,
  outW: number,
  out?: Uint8Array,
): Uint8Array {
  checkTargetSize(outH, outW, 'resizeArea');
  if (!(h > 0 && w > 0 && c > 0) || src.length < h * w * c) {
    throw new InputError(`resizeArea: bad input of ${src.length} values for ${h} x ${w} x ${c}`);
  }
  const n = outH * outW * c;
  const dst = out ?? new Uint8Array(n);
  if (dst.length < n) throw new InputError(`resizeArea: output buffer too small (${dst.length} < ${n})`);
  if (outH === h && outW === w) {
    dst.set(src.subarray(0, n));
    return dst;
  }
  const invX = outW / w;
  const invY = outH / h;
  const scaleX = 1 / invX;
  const scaleY = 1 / invY;
  if (scaleX >= 1 && scaleY >= 1) {
    const isx = roundHalfEven(scaleX);
    const isy = roundHalfEven(scaleY);
    if (Math.abs(scaleX - isx) < DBL_EPSILON && Math.abs(scaleY - isy) < DBL_EPSILON) {
      areaFast(src, h, w, c, outH, outW, isx, isy, dst);
    } else {
      areaGeneral(
        src,
        w,
        c,
        outH,
        outW,
        areaTabs.get(w, outW, () => computeAreaTab(w, outW, scaleX)),
        areaTabs.get(h, outH, () => computeAreaTab(h, outH, scaleY)),
        dst,
      );
    }
  } else {
    areaEnlarge(
      src,
      w,
      c,
      outH,
      outW,
      linearTabsX.get(w, outW, () => computeLinearTab(w, outW, true)),
      linearTabsY.get(h, outH, () => computeLinearTab(h, outH, false)),
      dst,
    );
  }
  return dst;
}

/** Integer shrink factors: the 2x2 rounding-shift fast path, else float32 block mean. */
function areaFast(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  outH: number,
  outW: number,
  sx: number,
  sy: number,
  dst: Uint8Array,
): void {
  const rowStride = w * c;
  const outRow = outW * c;
  if (sx === 2 && sy === 2 && (c === 1 || c === 3 || c === 4)) {
    for (let dy = 0; dy < outH; dy++) {
      const r0 = 2 * dy * rowStride;
      const r1 = r0 + rowStride;
      let o = dy * outRow;
      for (let dx = 0; dx < outW; dx++) {
        const b = 2 * dx * c;
        for (let k = 0; k < c; k++, o++) {
          const p = b + k;
          dst[o] = (src[r0 + p] + src[r0 + p + c] + src[r1 + p] + src[r1 + p + c] + 2) >> 2;
        }
      }
    }
    return;
  }
  const scale = fround(1 / (sx * sy));
  for (let dy = 0; dy < outH; dy++) {
    const sy0 = dy * sy;
    let o = dy * outRow;
    for (let dx = 0; dx < outW; dx++) {
      const sx0 = dx * sx * c;
      for (let k = 0; k < c; k++, o++) {
        let sum = 0;
        for (let yy = 0; yy < sy; yy++) {
          const row = (sy0 + yy) * rowStride + sx0 + k;
          for (let xx = 0; xx < sx; xx++) sum += src[row + xx * c];
        }
        const v = roundHalfEven(fround(sum * scale));
        dst[o] = v > 255 ? 255 : v;
      }
    }
  }
}

/** General shrink: float32 weights, horizontal then vertical accumulation (ResizeArea_Invoker). */
function areaGeneral(
  src: Uint8Array,
  w: number,
  c: number,
  outH: number,
  outW: number,
  xtab: AreaTab,
  ytab: AreaTab,
  dst: Uint8Array,
): void {
  const rowStride = w * c;
  const outRow = outW * c;
  const { si: xsi, alpha: xal } = xtab;
  // The table's entries for one output column are contiguous: [start[d], start[d+1]).
  const start = new Int32Array(outW + 1);
  for (let k = 0; k < xtab.n; k++) start[xtab.di[k] + 1] = k + 1;
  for (let d = 1; d <= outW; d++) if (start[d] < start[d - 1]) start[d] = start[d - 1];
  if ((c === 1 || c === 3) && areaWasm()?.general(src, w, c, outW, outH, xtab, ytab, start, dst)) return;
  const buf = new Float32Array(outRow);
  const sum = new Float32Array(outRow);
  let prevDy = ytab.di[0];
  let prevSy = -1;
  for (let j = 0; j < ytab.n; j++) {
    const beta = ytab.alpha[j];
    const dy = ytab.di[j];
    const sy = ytab.si[j];
    const rowOff = sy * rowStride;
    // Horizontal pass: buf[d] = Σ fround(src·α) accumulated in float32, in table order. A source
    // row straddling two output rows comes twice in a row: its buf is still there (as OpenCV
    // keeps it), which saves about a third of the passes when shrinking by less than 2.
    if (sy === prevSy) {
      // buf already holds this row
    } else if (c === 1) {
      for (let d = 0; d < outW; d++) {
        let acc = 0;
        for (let k = start[d], e = start[d + 1]; k < e; k++)
          acc = fround(acc + fround(src[rowOff + xsi[k]] * xal[k]));
        buf[d] = acc;
      }
    } else if (c === 3) {
      for (let d = 0; d < outW; d++) {
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        for (let k = start[d], e = start[d + 1]; k < e; k++) {
          const p = rowOff + xsi[k] * 3;
          const a = xal[k];
          a0 = fround(a0 + fround(src[p] * a));
          a1 = fround(a1 + fround(src[p + 1] * a));
          a2 = fround(a2 + fround(src[p + 2] * a));
        }
        buf[3 * d] = a0;
        buf[3 * d + 1] = a1;
        buf[3 * d + 2] = a2;
      }
    } else {
      for (let d = 0; d < outW; d++) {
        for (let ch = 0; ch < c; ch++) {
          let acc = 0;
          for (let k = start[d], e = start[d + 1]; k < e; k++)
            acc = fround(acc + fround(src[rowOff + xsi[k] * c + ch] * xal[k]));
          buf[d * c + ch] = acc;
        }
      }
    }
    prevSy = sy;
    if (dy !== prevDy) {
      const o = prevDy * outRow;
      for (let x = 0; x < outRow; x++) {
        const v = roundHalfEven(sum[x]);
        dst[o + x] = v < 0 ? 0 : v > 255 ? 255 : v;
        sum[x] = fround(beta * buf[x]);
      }
      prevDy = dy;
    } else {
      for (let x = 0; x < outRow; x++) sum[x] = sum[x] + fround(beta * buf[x]);
    }
  }
  const o = prevDy * outRow;
  for (let x = 0; x < outRow; x++) {
    const v = roundHalfEven(sum[x]);
    dst[o + x] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
}

/** Enlarging: integer "area" bilinear coefficients and OpenCV's fixed-point vertical pass. */
function areaEnlarge(
  src: Uint8Array,
  w: number,
  c: number,
  outH: number,
  outW: number,
  xt: LinearTab,
  yt: LinearTab,
  dst: Uint8Array,
): void {
  const rowStride = w * c;
  const outRow = outW * c;
  // Two horizontally resampled rows, keyed by their source row (a row is reused by consecutive dy).
  const rows = [new Int32Array(outRow), new Int32Array(outRow)];
  const rowOf = [-1, -1];
  const hrow = (sy: number): Int32Array => {
    if (rowOf[0] === sy) return rows[0];
    if (rowOf[1] === sy) return rows[1];
    // Replace the slot not holding the other row of this dy (the older one).
    const slot = rowOf[0] < rowOf[1] ? 0 : 1;
    const r = rows[slot];
    rowOf[slot] = sy;
    const off = sy * rowStride;
    const { i0, i1, a0, a1 } = xt;
    let o = 0;
    for (let dx = 0; dx < outW; dx++) {
      const p0 = off + i0[dx] * c;
      const p1 = off + i1[dx] * c;
      const b0 = a0[dx];
      const b1 = a1[dx];
      for (let k = 0; k < c; k++, o++) r[o] = src[p0 + k] * b0 + src[p1 + k] * b1;
    }
    return r;
  };
  for (let dy = 0; dy < outH; dy++) {
    const s0 = yt.i0[dy];
    const s1 = yt.i1[dy];
    const h0 = hrow(s0);
    const h1 = hrow(s1);
    const b0 = yt.a0[dy];
    const b1 = yt.a1[dy];
    const o = dy * outRow;
    for (let x = 0; x < outRow; x++) {
      dst[o + x] = (((b0 * (h0[x] >> 4)) >> 16) + ((b1 * (h1[x] >> 4)) >> 16) + 2) >> 2;
    }
  }
}

/**
 * `cv2.resize(img, (outW, outH), interpolation=cv2.INTER_AREA)` for a uint8 (H,W) or (H,W,C)
 * NdArray (C in {1,3,4}). The output keeps the layout: (outH,outW) or (outH,outW,C).
 */
export function resizeArea(img: NdArray, outH: number, outW: number): NdArray<'uint8'> {
  const { h, w, c } = hwcShape(img, 'resizeArea', { dtypes: ['uint8'], channels: [1, 3, 4] });
  const data = resizeAreaU8(img.data as Uint8Array, h, w, c, outH, outW);
  return { dtype: 'uint8', shape: img.shape.length === 2 ? [outH, outW] : [outH, outW, c], data };
}
