/**
 * Exact Euclidean distance transform with anisotropic spacing: the separable lower-envelope
 * algorithm of Felzenszwalb and Huttenlocher, one pass per axis over squared distances.
 *
 * A point's result is min over feature points p of sum_k ((p_k - x_k) * s_k)^2, with the terms
 * summed in axis order (axis 0 first), the way SciPy's `distance_transform_edt(sampling=...)`
 * sums them, so values agree bit for bit in all but near-tie cases.
 */

/** Scratch buffers for `envelope1d`, sized for lines of up to `n` points. */
export class EnvelopeScratch {
  v: Int32Array;
  z: Float64Array;
  fv: Float64Array;
  hv: Float64Array;
  constructor(n: number) {
    this.v = new Int32Array(n);
    this.z = new Float64Array(n + 1);
    this.fv = new Float64Array(n);
    this.hv = new Float64Array(n);
  }
  ensure(n: number): void {
    if (this.v.length < n) {
      this.v = new Int32Array(n);
      this.z = new Float64Array(n + 1);
      this.fv = new Float64Array(n);
      this.hv = new Float64Array(n);
    }
  }
}

/**
 * One line of the transform: `out[i] = min_q f[q] + ((i - q) * s)^2` for i in 0..n-1, where
 * `f[q] = Infinity` marks "no feature". Reads `f[fOff + q*fStride]`, writes
 * `out[oOff + i*oStride]`; `out` may be `f` (in place). Returns false (and writes nothing) when
 * the line has no finite value, so the caller can fill or skip.
 */
export function envelope1d(
  f: Float64Array,
  fOff: number,
  fStride: number,
  n: number,
  s: number,
  out: Float64Array,
  oOff: number,
  oStride: number,
  scratch: EnvelopeScratch,
): boolean {
  const v = scratch.v;
  const z = scratch.z;
  const fv = scratch.fv;
  const hv = scratch.hv;
  let k = -1;
  for (let q = 0, idx = fOff; q < n; q++, idx += fStride) {
    const fq = f[idx];
    if (fq === Infinity) continue;
    const pq = q * s;
    const hq = fq + pq * pq;
    let zq = -Infinity;
    while (k >= 0) {
      const pr = v[k] * s;
      zq = (hq - hv[k]) / (2 * (pq - pr));
      if (zq <= z[k]) {
        k--;
        zq = -Infinity;
      } else break;
    }
    k++;
    v[k] = q;
    fv[k] = fq;
    hv[k] = hq;
    z[k] = zq;
  }
  if (k < 0) return false;
  z[k + 1] = Infinity;
  let j = 0;
  for (let i = 0, o = oOff; i < n; i++, o += oStride) {
    const pi = i * s;
    while (z[j + 1] < pi) j++;
    const t = (i - v[j]) * s;
    out[o] = fv[j] + t * t;
  }
  return true;
}

/**
 * Builds the lower envelope of one line (the first half of `envelope1d`) into `scratch`; returns
 * the number of parabolas (0 when the line has no finite value). Evaluate with `envelopeAt`.
 */
export function envelopeBuild(
  f: Float64Array,
  fOff: number,
  fStride: number,
  n: number,
  s: number,
  scratch: EnvelopeScratch,
): number {
  const v = scratch.v;
  const z = scratch.z;
  const fv = scratch.fv;
  const hv = scratch.hv;
  let k = -1;
  for (let q = 0, idx = fOff; q < n; q++, idx += fStride) {
    const fq = f[idx];
    if (fq === Infinity) continue;
    const pq = q * s;
    const hq = fq + pq * pq;
    let zq = -Infinity;
    while (k >= 0) {
      zq = (hq - hv[k]) / (2 * (pq - v[k] * s));
      if (zq <= z[k]) {
        k--;
        zq = -Infinity;
      } else break;
    }
    k++;
    v[k] = q;
    fv[k] = fq;
    hv[k] = hq;
    z[k] = zq;
  }
  z[k + 1] = Infinity;
  return k + 1;
}

/**
 * Squared distances from every point of a 1D, 2D or 3D grid to the nearest non-zero element of
 * `features` (C order, `shape`), with `spacing[k]` the step along axis k. Infinity where there is
 * no feature at all.
 */
export function squaredDistanceTransform(
  features: ArrayLike<number>,
  shape: readonly number[],
  spacing: readonly number[],
): Float64Array {
  const nd = shape.length;
  if (nd < 1 || nd > 3) throw new RangeError(`squaredDistanceTransform: 1 to 3 dimensions, got ${nd}`);
  if (spacing.length !== nd)
    throw new RangeError(`squaredDistanceTransform: spacing has ${spacing.length} values for ${nd} axes`);
  let total = 1;
  for (const s of shape) total *= s;
  const d = new Float64Array(total);
  for (let i = 0; i < total; i++) d[i] = features[i] ? 0 : Infinity;
  const strides = new Array<number>(nd);
  let st = 1;
  for (let k = nd - 1; k >= 0; k--) {
    strides[k] = st;
    st *= shape[k];
  }
  const scratch = new EnvelopeScratch(Math.max(...shape, 1));
  // Axis 0 first, so that the terms add up in SciPy's order.
  for (let axis = 0; axis < nd; axis++) {
    const n = shape[axis];
    const stride = strides[axis];
    const s = spacing[axis];
    // Enumerate the starts of all lines along `axis`.
    const outer = total / (n * stride);
    for (let o = 0; o < outer; o++) {
      const base = o * n * stride;
      for (let inner = 0; inner < stride; inner++) {
        const off = base + inner;
        if (!envelope1d(d, off, stride, n, s, d, off, stride, scratch)) {
          for (let i = 0, p = off; i < n; i++, p += stride) d[p] = Infinity;
        }
      }
    }
  }
  return d;
}

/** Distances (not squared) from every grid point to the nearest feature; see `squaredDistanceTransform`. */
export function distanceTransform(
  features: ArrayLike<number>,
  shape: readonly number[],
  spacing: readonly number[],
): Float64Array {
  const d = squaredDistanceTransform(features, shape, spacing);
  for (let i = 0; i < d.length; i++) d[i] = Math.sqrt(d[i]);
  return d;
}
