/**
 * `F.interpolate(x, size=(outH, outW), mode='bilinear', align_corners=False)` without antialias
 * (spec §12.4), as torch 1.13 on CPU evaluates it for float32: the scale is a float32 division,
 * the source coordinate is computed in double, the lambdas are float32, and the output is
 * `λ0y·(λ0x·x00 + λ1x·x01) + λ1y·(λ0x·x10 + λ1x·x11)` in float32, each `a·b + c·d` evaluated as
 * `fma(a, b, c·d)` as torch's AVX2 build contracts it (the float32 product is exact in double, so
 * one rounding of `a*b + fround(c*d)` emulates it). torch's vectorised kernel still rounds a
 * float32 ulp differently at some pixels (≤ 2.4e-7 on the fixtures).
 */
import { InputError } from '@mcp-medsam/core/common';
import type { NdArray } from '../dtype.js';
import { checkTargetSize, TableCache } from './common.js';

const fround = Math.fround;

/** Per-axis bilinear tables. */
export interface BilinearTable {
  i0: Int32Array;
  i1: Int32Array;
  l0: Float32Array;
  l1: Float32Array;
}

/** The bilinear (align_corners=False) source indices and float32 lambdas for n_in → n_out. */
export function bilinearTable(nIn: number, nOut: number): BilinearTable {
  return bilinearTabs.get(nIn, nOut, () => {
    const i0 = new Int32Array(nOut);
    const i1 = new Int32Array(nOut);
    const l0 = new Float32Array(nOut);
    const l1 = new Float32Array(nOut);
    if (nIn === nOut) {
      for (let d = 0; d < nOut; d++) {
        i0[d] = d;
        i1[d] = d;
        l0[d] = 1;
      }
      return { i0, i1, l0, l1 };
    }
    const scale = fround(fround(nIn) / fround(nOut));
    for (let d = 0; d < nOut; d++) {
      const src = Math.max(scale * (d + 0.5) - 0.5, 0);
      const a = Math.trunc(src);
      i0[d] = a;
      i1[d] = a + (a < nIn - 1 ? 1 : 0);
      const lam = fround(Math.min(Math.max(src - a, 0), 1));
      l1[d] = lam;
      l0[d] = fround(1 - lam);
    }
    return { i0, i1, l0, l1 };
  });
}

const bilinearTabs = new TableCache<BilinearTable>();

/** Where `resizeBilinearPlanes` reads and writes. */
export interface BilinearPlanesOptions {
  /** Output buffer (planes*outH*outW values); allocated when absent. */
  out?: Float32Array;
  /** Elements between source rows (default w): read a sub-window of a larger array. */
  rowStride?: number;
  /** Elements between source planes (default h*rowStride). */
  planeStride?: number;
}

/**
 * Bilinear resize of float32 planes `(planes, h, w)` to `(planes, outH, outW)`. With `rowStride`
 * / `planeStride` the source can be the top-left h x w window of bigger planes (e.g. the
 * [:newH, :newW] crop of 256x256 logits) without a copy.
 */
export function resizeBilinearPlanes(
  src: Float32Array,
  planes: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
  options: BilinearPlanesOptions = {},
): Float32Array {
  checkTargetSize(outH, outW, 'resizeBilinear');
  const srcRowStride = options.rowStride ?? w;
  const srcPlaneStride = options.planeStride ?? h * srcRowStride;
  const need = planes > 0 ? (planes - 1) * srcPlaneStride + (h - 1) * srcRowStride + w : 0;
  if (
    !(h > 0 && w > 0 && planes >= 0 && srcRowStride >= w && srcPlaneStride >= h * srcRowStride) ||
    src.length < need
  ) {
    throw new InputError(`resizeBilinear: bad input of ${src.length} values for ${planes} x ${h} x ${w}`);
  }
  const n = planes * outH * outW;
  const dst = options.out ?? new Float32Array(n);
  if (dst.length < n) throw new InputError(`resizeBilinear: output buffer too small (${dst.length} < ${n})`);
  const xt = bilinearTable(w, outW);
  const yt = bilinearTable(h, outH);
  // Horizontal interpolation of every source row once: t[r][x] = λ0x·s[r][i0] + λ1x·s[r][i1].
  const t = new Float32Array(h * outW);
  const { i0: xi0, i1: xi1, l0: xl0, l1: xl1 } = xt;
  const { i0: yi0, i1: yi1, l0: yl0, l1: yl1 } = yt;
  for (let pl = 0; pl < planes; pl++) {
    const inPlane = pl * srcPlaneStride;
    for (let r = 0; r < h; r++) {
      const s = inPlane + r * srcRowStride;
      const o = r * outW;
      for (let x = 0; x < outW; x++) {
        t[o + x] = xl0[x] * src[s + xi0[x]] + fround(xl1[x] * src[s + xi1[x]]); // fused
      }
    }
    const outPlane = pl * outH * outW;
    for (let y = 0; y < outH; y++) {
      const r0 = yi0[y] * outW;
      const r1 = yi1[y] * outW;
      const a = yl0[y];
      const b = yl1[y];
      const o = outPlane + y * outW;
      for (let x = 0; x < outW; x++) dst[o + x] = a * t[r0 + x] + fround(b * t[r1 + x]); // fused
    }
  }
  return dst;
}

/**
 * `F.interpolate(..., mode='bilinear', align_corners=False)` of a float32 (N,C,H,W) or (H,W)
 * array; the output keeps the layout.
 */
export function resizeBilinear(arr: NdArray, outH: number, outW: number): NdArray<'float32'> {
  if (arr.dtype !== 'float32') throw new InputError(`resizeBilinear: expected float32, got ${arr.dtype}`);
  const s = arr.shape;
  if (s.length !== 2 && s.length !== 4) {
    throw new InputError(`resizeBilinear: expected (N,C,H,W) or (H,W), got shape [${s.join(', ')}]`);
  }
  const planes = s.length === 4 ? s[0] * s[1] : 1;
  const h = s[s.length - 2];
  const w = s[s.length - 1];
  if (h <= 0 || w <= 0) throw new InputError(`resizeBilinear: empty input, shape [${s.join(', ')}]`);
  const data = resizeBilinearPlanes(arr.data as Float32Array, planes, h, w, outH, outW);
  return { dtype: 'float32', shape: s.length === 4 ? [s[0], s[1], outH, outW] : [outH, outW], data };
}
