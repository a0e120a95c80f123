/**
 * `cv2.resize(img, (outW, outH), interpolation=cv2.INTER_NEAREST)` (spec §12.2), bit-exact with
 * OpenCV 4.6: `src = min(floor(d * (1 / (n_out / n_in))), n_in - 1)` in double. This is not
 * pixel-centre sampling. Works for any dtype (values are copied, never converted).
 */
import { InputError } from '@mcp-medsam/core/common';
import { typedArrayConstructor, type AnyTypedArray, type DType, type NdArray } from '../dtype.js';
import { checkTargetSize, hwcShape, TableCache } from './common.js';

const nearestTabs = new TableCache<Int32Array>();

/** Source index of every output index along one axis. */
export function nearestIndices(nIn: number, nOut: number): Int32Array {
  return nearestTabs.get(nIn, nOut, () => {
    const inv = 1 / (nOut / nIn);
    const t = new Int32Array(nOut);
    for (let d = 0; d < nOut; d++) t[d] = Math.min(Math.floor(d * inv), nIn - 1);
    return t;
  });
}

/** INTER_NEAREST on raw HWC data of any typed array. */
export function resizeNearestRaw<T extends AnyTypedArray>(
  src: T,
  h: number,
  w: number,
  c: number,
  outH: number,
  outW: number,
  out?: T,
): T {
  checkTargetSize(outH, outW, 'resizeNearest');
  if (!(h > 0 && w > 0 && c > 0) || src.length < h * w * c) {
    throw new InputError(`resizeNearest: bad input of ${src.length} values for ${h} x ${w} x ${c}`);
  }
  const n = outH * outW * c;
  const Ctor = src.constructor as new (n: number) => T;
  const dst = out ?? new Ctor(n);
  const xs = nearestIndices(w, outW);
  const ys = nearestIndices(h, outH);
  const d = dst as unknown as Float64Array; // index access only; no conversion happens
  const s = src as unknown as Float64Array;
  let o = 0;
  if (c === 1) {
    for (let y = 0; y < outH; y++) {
      const row = ys[y] * w;
      for (let x = 0; x < outW; x++) d[o++] = s[row + xs[x]];
    }
  } else {
    for (let y = 0; y < outH; y++) {
      const row = ys[y] * w;
      for (let x = 0; x < outW; x++) {
        const p = (row + xs[x]) * c;
        for (let k = 0; k < c; k++) d[o++] = s[p + k];
      }
    }
  }
  return dst;
}

/**
 * INTER_NEAREST for an (H,W) or (H,W,C) NdArray of any dtype; the output keeps dtype and layout.
 */
export function resizeNearest<D extends DType>(img: NdArray<D>, outH: number, outW: number): NdArray<D> {
  const { h, w, c } = hwcShape(img, 'resizeNearest');
  checkTargetSize(outH, outW, 'resizeNearest');
  const out = new (typedArrayConstructor(img.dtype))(outH * outW * c);
  resizeNearestRaw(img.data, h, w, c, outH, outW, out);
  return { dtype: img.dtype, shape: img.shape.length === 2 ? [outH, outW] : [outH, outW, c], data: out };
}
