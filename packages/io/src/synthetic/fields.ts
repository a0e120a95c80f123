/**
 * Float planes for building synthetic images: smooth value noise (texture, bias fields,
 * illumination), separable Gaussian blur (partial volume, optics, correlated speckle) and
 * additive noise. A plane is a Float32Array of H·W values in C order.
 */
import type { PixelRandom } from './random.js';

/** Hermite smoothstep from 0 at `e0` to 1 at `e1` (`e0 > e1` gives a falling step). */
export function smoothstep(e0: number, e1: number, x: number): number {
  let t = (x - e0) / (e1 - e0);
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  return t * t * (3 - 2 * t);
}

/** Per-axis cell indices and smoothed weights, so the inner loop does no division. */
function axisTable(n: number, cell: number): { idx: Int32Array; wt: Float32Array } {
  const idx = new Int32Array(n);
  const wt = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = i / cell;
    const k = Math.floor(g);
    const f = g - k;
    idx[i] = k;
    wt[i] = f * f * (3 - 2 * f);
  }
  return { idx, wt };
}

/**
 * Add `amp` times a smooth random field to `out` (H·W): uniform values in [-1, 1] on a grid of
 * `cell`-pixel spacing, smoothly interpolated. Returns `out`.
 */
export function addValueNoise(
  rand: PixelRandom,
  h: number,
  w: number,
  cell: number,
  amp: number,
  out: Float32Array,
): Float32Array {
  const c = Math.max(1, cell);
  const gw = Math.floor((w - 1) / c) + 2;
  const gh = Math.floor((h - 1) / c) + 2;
  const grid = new Float32Array(gw * gh);
  for (let i = 0; i < grid.length; i++) grid[i] = 2 * rand.random() - 1;
  const cols = axisTable(w, c);
  const rows = axisTable(h, c);
  // Interpolate the two grid rows around each image row once, then only along x per pixel.
  const line = new Float32Array(gw);
  for (let y = 0; y < h; y++) {
    const r0 = rows.idx[y] * gw;
    const wy = rows.wt[y];
    for (let k = 0; k < gw; k++) line[k] = amp * (grid[r0 + k] + (grid[r0 + gw + k] - grid[r0 + k]) * wy);
    const o = y * w;
    for (let x = 0; x < w; x++) {
      const k = cols.idx[x];
      out[o + x] += line[k] + (line[k + 1] - line[k]) * cols.wt[x];
    }
  }
  return out;
}

/**
 * Fractal value noise: `octaves` layers, each at half the cell size and `gain` times the
 * amplitude of the previous one, scaled so the layers' amplitudes sum to 1 (values in [-1, 1],
 * most near 0).
 */
export function fractalNoise(
  rand: PixelRandom,
  h: number,
  w: number,
  cell: number,
  octaves = 3,
  gain = 0.5,
): Float32Array {
  const out = new Float32Array(h * w);
  let total = 0;
  for (let o = 0, a = 1; o < octaves; o++, a *= gain) total += a;
  for (let o = 0, a = 1 / total, c = cell; o < octaves; o++, a *= gain, c /= 2)
    addValueNoise(rand, h, w, c, a, out);
  return out;
}

function gaussianKernel(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/**
 * Separable Gaussian blur of a plane in place, `sigmaX` along rows and `sigmaY` along columns
 * (either may be 0 to skip that axis); borders are clamped, so edges do not darken.
 */
export function gaussianBlur(
  plane: Float32Array,
  h: number,
  w: number,
  sigmaX: number,
  sigmaY = sigmaX,
): Float32Array {
  if (sigmaX > 0) {
    const k = gaussianKernel(sigmaX);
    const r = (k.length - 1) >> 1;
    // Each row is copied into a buffer padded with its edge values, so the taps need no clamping.
    const row = new Float32Array(w + 2 * r);
    for (let y = 0; y < h; y++) {
      const o = y * w;
      row.set(plane.subarray(o, o + w), r);
      row.fill(plane[o], 0, r);
      row.fill(plane[o + w - 1], r + w);
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let j = 0; j < k.length; j++) s += k[j] * row[x + j];
        plane[o + x] = s;
      }
    }
  }
  if (sigmaY > 0) {
    const k = gaussianKernel(sigmaY);
    const r = (k.length - 1) >> 1;
    // Whole rows at a time: walking down columns would miss the cache on every read.
    const src = plane.slice();
    for (let y = 0; y < h; y++) {
      const o = y * w;
      plane.fill(0, o, o + w);
      for (let j = -r; j <= r; j++) {
        const yy = y + j < 0 ? 0 : y + j >= h ? h - 1 : y + j;
        const kj = k[j + r];
        const s = yy * w;
        for (let x = 0; x < w; x++) plane[o + x] += kj * src[s + x];
      }
    }
  }
  return plane;
}

/** Add zero-mean Gaussian noise of standard deviation `sigma` to every value. */
export function addGaussianNoise(plane: Float32Array, rand: PixelRandom, sigma: number): Float32Array {
  for (let i = 0; i < plane.length; i++) plane[i] += sigma * rand.normal();
  return plane;
}

/** A plane filled with `value`. */
export function constantPlane(n: number, value: number): Float32Array {
  return new Float32Array(n).fill(value);
}

/**
 * Blur with the 3-tap binomial kernel [1, 2, 1]/4 along both axes, `passes` times (σ ≈ 0.71 for
 * one pass, 1.0 for two): the common light blurs at a fraction of `gaussianBlur`'s cost.
 */
export function binomialBlur(plane: Float32Array, h: number, w: number, passes = 1): Float32Array {
  const row = new Float32Array(w);
  const prev = new Float32Array(w);
  const cur = new Float32Array(w);
  for (let p = 0; p < passes; p++) {
    for (let y = 0; y < h; y++) {
      const o = y * w;
      row.set(plane.subarray(o, o + w));
      let left = row[0];
      for (let x = 0; x < w; x++) {
        const mid = row[x];
        const right = x + 1 < w ? row[x + 1] : mid;
        plane[o + x] = 0.25 * (left + right) + 0.5 * mid;
        left = mid;
      }
    }
    // Vertical pass row by row, keeping the previous and current unblurred rows.
    prev.set(plane.subarray(0, w));
    for (let y = 0; y < h; y++) {
      const o = y * w;
      cur.set(plane.subarray(o, o + w));
      const n = y + 1 < h ? o + w : o;
      for (let x = 0; x < w; x++) plane[o + x] = 0.25 * (prev[x] + plane[n + x]) + 0.5 * cur[x];
      prev.set(cur);
    }
  }
  return plane;
}
