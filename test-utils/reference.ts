/**
 * Float64 reference implementations of the layers, written as direct loops from the PyTorch
 * definitions, to check the tfjs layers against. Maps are NHWC, weights in PyTorch layouts.
 */

export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    // Maclaurin series: 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 80; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz), accurate for |x| >= 3
  let f = ax;
  let c = ax;
  let d = 0;
  for (let k = 1; k < 200; k++) {
    const a = k / 2;
    d = ax + a * d;
    d = 1 / d;
    c = ax + a / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

/** y = x·Wᵀ + b over the last axis; x has `rows` rows of `inF`. */
export function linear(
  x: ArrayLike<number>,
  rows: number,
  inF: number,
  w: ArrayLike<number>,
  outF: number,
  b?: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
      y[r * outF + o] = s;
    }
  return y;
}

/** Conv2d on NHWC with weight (out, in/groups, k, k), zero padding. */
export function conv2d(
  x: ArrayLike<number>,
  [n, h, w, c]: number[],
  wt: ArrayLike<number>,
  outC: number,
  k: number,
  stride: number,
  pad: number,
  groups: number,
  bias?: ArrayLike<number>,
): { data: Float64Array; shape: number[] } {
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  const cpg = c / groups;
  const opg = outC / groups;
  const y = new Float64Array(n * oh * ow * outC);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let o = 0; o < outC; o++) {
          const g = Math.floor(o / opg);
          let s = bias ? bias[o] : 0;
          for (let ci = 0; ci < cpg; ci++)
            for (let a = 0; a < k; a++)
              for (let bb = 0; bb < k; bb++) {
                const yi = i * stride - pad + a;
                const xj = j * stride - pad + bb;
                if (yi < 0 || yi >= h || xj < 0 || xj >= w) continue;
                s += x[((b * h + yi) * w + xj) * c + g * cpg + ci] * wt[((o * cpg + ci) * k + a) * k + bb];
              }
          y[((b * oh + i) * ow + j) * outC + o] = s;
        }
  return { data: y, shape: [n, oh, ow, outC] };
}

/** ConvTranspose2d with kernel = stride = k on NHWC, weight (in, out, k, k). */
export function convTranspose2d(
  x: ArrayLike<number>,
  [n, h, w, c]: number[],
  wt: ArrayLike<number>,
  outC: number,
  k: number,
  bias?: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(n * h * k * w * k * outC);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++)
        for (let a = 0; a < k; a++)
          for (let bb = 0; bb < k; bb++)
            for (let o = 0; o < outC; o++) {
              let s = bias ? bias[o] : 0;
              for (let ci = 0; ci < c; ci++)
                s += x[((b * h + i) * w + j) * c + ci] * wt[((ci * outC + o) * k + a) * k + bb];
              y[((b * h * k + i * k + a) * w * k + j * k + bb) * outC + o] = s;
            }
  return y;
}

/** LayerNorm over the last axis (biased variance). */
export function layerNorm(
  x: ArrayLike<number>,
  rows: number,
  d: number,
  g: ArrayLike<number>,
  b: ArrayLike<number>,
  eps: number,
): Float64Array {
  const y = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let i = 0; i < d; i++) m += x[r * d + i];
    m /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[r * d + i] - m) ** 2;
    v /= d;
    for (let i = 0; i < d; i++) y[r * d + i] = ((x[r * d + i] - m) / Math.sqrt(v + eps)) * g[i] + b[i];
  }
  return y;
}

/** Softmax of each row. */
export function softmaxRows(x: Float64Array, rows: number, d: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mx = -Infinity;
    for (let i = 0; i < d; i++) mx = Math.max(mx, x[r * d + i]);
    let s = 0;
    for (let i = 0; i < d; i++) s += y[r * d + i] = Math.exp(x[r * d + i] - mx);
    for (let i = 0; i < d; i++) y[r * d + i] /= s;
  }
  return y;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Deterministic pseudo-random floats in [-1, 1) for test inputs. */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** Number of positions where two equally long arrays differ. */
export function countDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}
