/**
 * Intensity conversion to uint8 as the challenge pre-processing does it: CT windowing, MR
 * percentile scaling, min-max scaling, and grey -> 3 channels.
 *
 * Arithmetic is float64 and the final cast truncates toward zero, like numpy's
 * `((x - min) / (max - min) * 255.0).astype(np.uint8)`.
 */
import { InputError } from '@mcp-medsam/core/common';
import { type NdArray, ndarray, toFloat64 } from '../dtype.js';

export interface Window {
  /** Window level (centre), HU. */
  level: number;
  /** Window width, HU. */
  width: number;
}

/**
 * Common CT display windows (W/L in HU, as listed by radiology references such as Radiopaedia's
 * "Windowing (CT)"). `ct-abdomen` (soft tissue, W400/L40) is the challenge's default.
 */
export const CT_WINDOW_PRESETS: Readonly<Record<string, Window>> = Object.freeze({
  'ct-abdomen': { width: 400, level: 40 },
  'ct-soft-tissue': { width: 400, level: 40 },
  'ct-liver': { width: 150, level: 30 },
  'ct-mediastinum': { width: 350, level: 50 },
  'ct-lung': { width: 1500, level: -600 },
  'ct-bone': { width: 1800, level: 400 },
  'ct-brain': { width: 80, level: 40 },
  'ct-subdural': { width: 200, level: 75 },
  'ct-stroke': { width: 40, level: 40 },
});

/** A preset by name, or a custom window written `W/L` (e.g. `400/40`, `1500/-600`). */
export function parseWindow(spec: string | Window): Window {
  if (typeof spec !== 'string') {
    if (!(spec.width > 0) || !Number.isFinite(spec.level))
      throw new InputError(`invalid window W${spec.width}/L${spec.level}`);
    return spec;
  }
  const preset = CT_WINDOW_PRESETS[spec];
  if (preset) return preset;
  const m = /^\s*(-?[\d.]+)\s*\/\s*(-?[\d.]+)\s*$/.exec(spec);
  if (m) return parseWindow({ width: Number(m[1]), level: Number(m[2]) });
  throw new InputError(
    `unknown window '${spec}' (presets: ${Object.keys(CT_WINDOW_PRESETS).join(', ')}; or W/L such as 400/40)`,
  );
}

function scaleToUint8(x: Float64Array, lo: number, hi: number): Uint8Array {
  const out = new Uint8Array(x.length);
  const range = hi - lo;
  if (!(range > 0)) return out; // a constant image becomes 0 (numpy would give NaN -> undefined cast)
  for (let i = 0; i < x.length; i++) {
    const v = ((x[i] - lo) / range) * 255;
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
  return out;
}

function clipInPlace(x: Float64Array, lo: number, hi: number): [number, number] {
  let mn = Infinity;
  let mx = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
    x[i] = v;
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  return [mn, mx];
}

/**
 * CT windowing: clip to `[L - W/2, L + W/2]`, then scale the clipped volume's own min..max to
 * 0..255 (the challenge script's formula; for a volume that reaches both window bounds this is the
 * usual window mapping).
 */
export function windowToUint8(arr: NdArray, window: Window | string): NdArray<'uint8'> {
  const w = parseWindow(window);
  const x = toFloat64(arr);
  const [mn, mx] = clipInPlace(x, w.level - w.width / 2, w.level + w.width / 2);
  return ndarray('uint8', arr.shape, scaleToUint8(x, mn, mx));
}

/**
 * numpy's default ('linear') percentile of sorted values: virtual index q/100 * (n - 1), then
 * numpy's two-sided linear interpolation.
 */
export function percentileSorted(sorted: Float64Array, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new InputError('percentile of an empty set');
  const idx = (q / 100) * (n - 1);
  const lo = Math.floor(idx);
  const hi = Math.min(lo + 1, n - 1);
  const t = idx - lo;
  const a = sorted[lo];
  const b = sorted[hi];
  const d = b - a;
  return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

export interface PercentileOptions {
  /** Lower and upper percentiles (default 0.5 and 99.5). */
  percentiles?: [number, number];
  /**
   * Which voxels define the percentiles and stay 0: 'nonzero' (default; right for z-scored data)
   * or 'positive' (the challenge script's `> 0`).
   */
  foreground?: 'nonzero' | 'positive';
}

/**
 * MR scaling: clip to the given percentiles of the foreground voxels, scale the clipped volume's
 * min..max to 0..255, and keep background voxels (zero, or not positive) at 0.
 */
export function percentileToUint8(arr: NdArray, options: PercentileOptions = {}): NdArray<'uint8'> {
  const [pl, ph] = options.percentiles ?? [0.5, 99.5];
  if (!(pl >= 0 && ph <= 100 && pl < ph)) throw new InputError(`invalid percentiles [${pl}, ${ph}]`);
  const positive = options.foreground === 'positive';
  const x = toFloat64(arr);
  const bg = new Uint8Array(x.length);
  let nfg = 0;
  for (let i = 0; i < x.length; i++) {
    const isFg = positive ? x[i] > 0 : x[i] !== 0 && !Number.isNaN(x[i]);
    if (isFg) nfg++;
    else bg[i] = x[i] === 0 ? 1 : 0;
  }
  if (nfg === 0) return ndarray('uint8', arr.shape);
  const fg = new Float64Array(nfg);
  for (let i = 0, k = 0; i < x.length; i++)
    if (positive ? x[i] > 0 : x[i] !== 0 && !Number.isNaN(x[i])) fg[k++] = x[i];
  fg.sort();
  const lo = percentileSorted(fg, pl);
  const hi = percentileSorted(fg, ph);
  const [mn, mx] = clipInPlace(x, lo, hi);
  const out = scaleToUint8(x, mn, mx);
  for (let i = 0; i < out.length; i++) if (bg[i]) out[i] = 0;
  return ndarray('uint8', arr.shape, out);
}

/** Min-max scaling of the whole array to 0..255 (the challenge's rule for 16-bit 2D images). */
export function minMaxToUint8(arr: NdArray): NdArray<'uint8'> {
  const x = toFloat64(arr);
  let mn = Infinity;
  let mx = -Infinity;
  for (const v of x) {
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  return ndarray('uint8', arr.shape, scaleToUint8(x, mn, mx));
}

/**
 * A 2D image as (H, W, 3) uint8: grey (H,W) or (H,W,1) replicated, grey+alpha and RGBA lose the
 * alpha, non-uint8 data is min-max scaled first (or windowed when `window` is given).
 */
export function toRgb8(arr: NdArray, window?: Window | string): NdArray<'uint8'> {
  const s = arr.shape;
  if (s.length !== 2 && s.length !== 3)
    throw new InputError(`expected a 2D image, got shape [${s.join(', ')}]`);
  const [h, w] = s;
  const c = s.length === 3 ? s[2] : 1;
  if (c < 1 || c > 4) throw new InputError(`expected 1 to 4 channels, got ${c}`);
  const colour = c >= 3 ? 3 : 1;
  // Keep only the colour channels, then scale if needed.
  let base: NdArray = arr;
  if (c === 2 || c === 4) {
    const src = toFloat64(arr);
    const kept = new Float64Array(h * w * colour);
    for (let i = 0; i < h * w; i++) for (let k = 0; k < colour; k++) kept[i * colour + k] = src[i * c + k];
    base = ndarray('float64', [h, w, colour], kept);
    if (arr.dtype === 'uint8') base = ndarray('uint8', [h, w, colour], kept);
  }
  const u8 = window
    ? windowToUint8(base, window)
    : base.dtype === 'uint8'
      ? (base as NdArray<'uint8'>)
      : minMaxToUint8(base);
  const out = ndarray('uint8', [h, w, 3]);
  const src = u8.data;
  if (colour === 3) out.data.set(src.subarray(0, h * w * 3));
  else for (let i = 0; i < h * w; i++) out.data[3 * i] = out.data[3 * i + 1] = out.data[3 * i + 2] = src[i];
  return out;
}
