// Conv2D / DepthwiseConv2dNative backprop kernels for the wasm backend, built from the
// fast forward kernels (XNNPACK conv, 2-D matMul) plus cheap data movement.
import type {
  KernelBackend,
  NamedAttrMap,
  NamedTensorInfoMap,
  Tensor,
  Tensor2D,
  Tensor4D,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';
import { depthwiseFilterGradWasm } from '../kernels/depthwise_filter.js';
import { simdMatMulAt, simdMatMulAvailable } from '../kernels/batch_matmul.js';
import { offsetOf, type WasmBackendLike } from '../kernels/wasm_module.js';
import { asTensor, MAX_TEMP_ELEMENTS, padOrCrop, phaseMerge, phaseSplit, windows } from './util.js';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}

/**
 * One output phase r (positions h ≡ r mod s) of a transposed convolution along one axis:
 * dx[s*u + r] = Σ_t dyPadded[u + t] · w[taps[t]], with dy padded by `before` / `after`
 * (negative = cropped) to length u_count + taps.length - 1.
 */
interface Phase {
  taps: number[];
  before: number;
  after: number;
}

/** Splits the input-gradient of a strided 1-D correlation into stride-1 correlations. */
function axisPhases(
  inSize: number,
  outSize: number,
  k: number,
  s: number,
  padBefore: number,
): { count: number; phases: Phase[] } {
  const count = Math.ceil(inSize / s);
  const phases: Phase[] = [];
  for (let r = 0; r < s; r++) {
    const a0 = (r + padBefore) % s;
    const n = a0 < k ? Math.ceil((k - a0) / s) : 0;
    const c = (r + padBefore - a0) / s;
    const taps: number[] = [];
    for (let t = 0; t < n; t++) taps.push(a0 + s * (n - 1 - t));
    const before = n - 1 - c;
    phases.push({ taps, before, after: count + n - 1 - before - outSize });
  }
  return { count, phases };
}

/** Stride-1 'valid' (depthwise) conv of dy padded/cropped as a phase asks. */
function phaseConv(dy: Tensor4D, w: Tensor4D, ph: Phase, pw: Phase, depthwise: boolean): Tensor4D {
  let input = dy;
  let pad: Pad = 'valid';
  if (ph.before >= 0 && ph.after >= 0 && pw.before >= 0 && pw.after >= 0) {
    if (ph.before || ph.after || pw.before || pw.after) {
      pad = [
        [0, 0],
        [ph.before, ph.after],
        [pw.before, pw.after],
        [0, 0],
      ];
    }
  } else {
    input = padOrCrop(dy, ph.before, ph.after, pw.before, pw.after);
  }
  return depthwise ? tf.depthwiseConv2d(input, w, 1, pad) : tf.conv2d(input, w, 1, pad);
}

function isIdentity(taps: number[], k: number): boolean {
  return taps.length === k && taps.every((t, i) => t === i);
}

/** filter[taps_h][taps_w] (the taps already come flipped): one heap copy per tap block. */
function subFilter(filter: Tensor4D, th: number[], tw: number[]): Tensor4D {
  const [kh, kw, ci, co] = filter.shape;
  if (isIdentity(th, kh) && isIdentity(tw, kw)) return filter;
  const block = ci * co;
  const starts: number[] = [];
  for (const a of th) for (const b of tw) starts.push((a * kw + b) * block);
  const f = windows(
    filter,
    starts,
    starts.map((s) => s + block),
    block,
  );
  return tf.reshape(f, [th.length, tw.length, ci, co]);
}

/** Interleaves phase results [sh][sw] of shape [n, U, V, c] (given concatenated on axis 3) into [n, h, w, c]. */
function interleave(cat: Tensor4D, sh: number, sw: number, c: number, h: number, w: number): Tensor4D {
  const [, u, v] = cat.shape;
  if (sh === 1 && sw === 1 && u === h && v === w) return cat;
  return phaseMerge(cat, { sh, sw, h, w }) as Tensor4D;
}

/** dx of conv2d (NHWC, dilation 1): one stride-1 conv per output phase, phases sharing geometry fused. */
export function conv2dInputGrad(
  inShape: [number, number, number, number],
  dy: Tensor4D,
  filter: Tensor4D,
  strides: number | [number, number],
  pad: Pad,
  rounding: Rounding,
): Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(
    inShape,
    filter.shape,
    strides,
    1,
    pad,
    rounding,
    false,
    'channelsLast',
  );
  const [kh, kw, ci] = filter.shape;
  const [n] = inShape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const H = axisPhases(info.inHeight, info.outHeight, kh, sh, info.padInfo.top);
  const W = axisPhases(info.inWidth, info.outWidth, kw, sw, info.padInfo.left);
  // Group phases whose sub-convolutions have the same geometry: their filters concatenate.
  const groups = new Map<string, { ph: Phase; pw: Phase; members: number[] }>();
  for (let rh = 0; rh < sh; rh++) {
    for (let rw = 0; rw < sw; rw++) {
      const ph = H.phases[rh];
      const pw = W.phases[rw];
      if (ph.taps.length === 0 || pw.taps.length === 0) continue;
      const key = `${ph.taps.length},${pw.taps.length},${ph.before},${pw.before}`;
      const g = groups.get(key);
      if (g) g.members.push(rh * sw + rw);
      else groups.set(key, { ph, pw, members: [rh * sw + rw] });
    }
  }
  const parts: (Tensor4D | null)[] = new Array(sh * sw).fill(null);
  let whole: Tensor4D | null = null;
  for (const { ph, pw, members } of groups.values()) {
    const filters = members.map((m) => {
      const f = subFilter(filter, H.phases[Math.floor(m / sw)].taps, W.phases[m % sw].taps);
      return tf.transpose(f, [0, 1, 3, 2]) as Tensor4D;
    });
    const w = filters.length === 1 ? filters[0] : (tf.concat(filters, 3) as Tensor4D);
    const out = phaseConv(dy, w, ph, pw, false);
    if (members.length === sh * sw) whole = out;
    else if (members.length === 1) parts[members[0]] = out;
    else {
      const split = tf.split(out, members.length, 3) as Tensor4D[];
      members.forEach((m, i) => (parts[m] = split[i]));
    }
  }
  if (!whole) {
    const zeros = tf.zeros([n, H.count, W.count, ci]) as Tensor4D;
    const all = parts.map((p) => p ?? zeros);
    if (all.length > 1) return phaseMerge(all, { sh, sw, h: info.inHeight, w: info.inWidth }) as Tensor4D;
    whole = all[0];
  }
  return interleave(whole, sh, sw, ci, info.inHeight, info.inWidth);
}

/** dx of depthwiseConv2d (NHWC, dilation 1, any channel multiplier). */
export function depthwiseInputGrad(
  inShape: [number, number, number, number],
  dy: Tensor4D,
  filter: Tensor4D,
  strides: number | [number, number],
  pad: Pad,
  rounding: Rounding,
): Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(
    inShape,
    filter.shape,
    strides,
    1,
    pad,
    rounding,
    true,
    'channelsLast',
  );
  const [kh, kw, c, mult] = filter.shape;
  const [n] = inShape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const H = axisPhases(info.inHeight, info.outHeight, kh, sh, info.padInfo.top);
  const W = axisPhases(info.inWidth, info.outWidth, kw, sw, info.padInfo.left);
  const dys: Tensor4D[] = [];
  const filters: Tensor4D[] = [];
  for (let j = 0; j < mult; j++) {
    if (mult === 1) {
      dys.push(dy);
      filters.push(filter);
    } else {
      const idx = Array.from({ length: c }, (_, ch) => ch * mult + j);
      dys.push(tf.gather(dy, idx, 3));
      filters.push(tf.slice(filter, [0, 0, 0, j], [kh, kw, c, 1]));
    }
  }
  const parts: Tensor4D[] = [];
  let zeros: Tensor4D | null = null;
  for (let rh = 0; rh < sh; rh++) {
    for (let rw = 0; rw < sw; rw++) {
      const ph = H.phases[rh];
      const pw = W.phases[rw];
      if (ph.taps.length === 0 || pw.taps.length === 0) {
        zeros ??= tf.zeros([n, H.count, W.count, c]) as Tensor4D;
        parts.push(zeros);
        continue;
      }
      let acc: Tensor4D | null = null;
      for (let j = 0; j < mult; j++) {
        const o = phaseConv(dys[j], subFilter(filters[j], ph.taps, pw.taps), ph, pw, true);
        acc = acc ? (tf.add(acc, o) as Tensor4D) : o;
      }
      parts.push(acc as Tensor4D);
    }
  }
  if (parts.length === 1) return interleave(parts[0], sh, sw, c, info.inHeight, info.inWidth);
  return phaseMerge(parts, { sh, sw, h: info.inHeight, w: info.inWidth }) as Tensor4D;
}

interface FilterGeometry {
  sh: number;
  sw: number;
  /** Phase-grid size: dy extended by the taps that fall past it. */
  gh: number;
  gw: number;
  xPhases: Tensor;
}

/**
 * Pads x so that tap (a, b) of output (i, j) reads phase (a % sh, b % sw) at grid position
 * (i + ⌊a/sh⌋, j + ⌊b/sw⌋), and splits the strided phases out (channels-first when asked).
 */
function splitPhases(
  x: Tensor4D,
  kh: number,
  kw: number,
  info: tf.backend_util.Conv2DInfo,
  channelsFirst: boolean,
): FilterGeometry {
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const gh = info.outHeight + Math.floor((kh - 1) / sh);
  const gw = info.outWidth + Math.floor((kw - 1) / sw);
  const xPhases = phaseSplit(x, {
    sh,
    sw,
    gh,
    gw,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
    channelsFirst,
  });
  return { sh, sw, gh, gw, xPhases };
}

/** dy [N, oh, ow, C] zero-extended to the phase grid, as [N*gh*gw, C]. */
function gridDy(dy: Tensor4D, gh: number, gw: number): Tensor2D {
  if (dy.shape[1] === gh && dy.shape[2] === gw) return tf.reshape(dy, [-1, dy.shape[3]]);
  return phaseSplit(dy, { sh: 1, sw: 1, gh, gw, pt: 0, pl: 0, channelsFirst: false }) as Tensor2D;
}

/**
 * dW of conv2d (NHWC, dilation 1): im2col-transposed windows times dy as one 2-D matMul per chunk.
 * The wasm kernel takes `conv2dFilterGradWasm` (no copies of x) where the SIMD matMul runs; this
 * form needs no transpose flags (tfjs-wasm's flagged matMul is a scalar loop).
 */
export function conv2dFilterGrad(
  x: Tensor4D,
  dy: Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: Pad,
  rounding: Rounding,
): Tensor4D {
  const [kh, kw, ci] = filterShape;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape,
    filterShape,
    strides,
    1,
    pad,
    rounding,
    false,
    'channelsLast',
  );
  const { sh, sw, gh, gw, xPhases } = splitPhases(x, kh, kw, info, true);
  const m = x.shape[0] * gh * gw;
  const dyp = gridDy(dy, gh, gw);
  if (kh === 1 && kw === 1 && sh === 1 && sw === 1) {
    return tf.reshape(tf.matMul(tf.reshape(xPhases, [ci, m]), dyp), filterShape);
  }
  const taps = kh * kw;
  const perChunk = Math.max(1, Math.floor(MAX_TEMP_ELEMENTS / (ci * m)));
  const parts: Tensor[] = [];
  for (let t0 = 0; t0 < taps; t0 += perChunk) {
    const starts: number[] = [];
    const ends: number[] = [];
    for (let t = t0; t < Math.min(taps, t0 + perChunk); t++) {
      const a = Math.floor(t / kw);
      const b = t % kw;
      const phase = (a % sh) * sw + (b % sw);
      const shift = Math.floor(a / sh) * gw + Math.floor(b / sw);
      for (let c = 0; c < ci; c++) {
        const base = (phase * ci + c) * m;
        starts.push(base + shift);
        ends.push(base + m);
      }
    }
    const cols = windows(xPhases, starts, ends, m);
    parts.push(tf.matMul(cols as Tensor2D, dyp));
    cols.dispose();
  }
  const dw = parts.length === 1 ? parts[0] : tf.concat(parts, 0);
  return tf.reshape(dw, filterShape);
}

/** dW of depthwiseConv2d (NHWC, dilation 1): per tap a shifted window times dy, summed by a ones-matMul. */
export function depthwiseFilterGrad(
  x: Tensor4D,
  dy: Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: Pad,
  rounding: Rounding,
): Tensor4D {
  const [kh, kw, c, mult] = filterShape;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape,
    filterShape,
    strides,
    1,
    pad,
    rounding,
    true,
    'channelsLast',
  );
  const { sh, sw, gh, gw, xPhases } = splitPhases(x, kh, kw, info, false);
  const m = x.shape[0] * gh * gw;
  const dyp = tf.reshape(gridDy(dy, gh, gw), [m, c, mult]);
  // Σ over positions as a global average pool (XNNPACK, one pass) times the count; a
  // ones-matMul would re-pack its fresh right operand on every call (~20x slower here).
  const rowsH = x.shape[0] * gh;
  const rows: Tensor[] = [];
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const phase = (a % sh) * sw + (b % sw);
      const shift = Math.floor(a / sh) * gw + Math.floor(b / sw);
      const base = phase * m * c;
      const win = windows(xPhases, [base + shift * c], [base + m * c], m * c);
      const z = tf.mul(tf.reshape(win, [m, c, 1]), dyp);
      const avg = tf.avgPool(tf.reshape(z, [1, rowsH, gw, c * mult]) as Tensor4D, [rowsH, gw], 1, 'valid');
      rows.push(tf.reshape(avg, [1, c * mult]));
      tf.dispose([win, z]);
    }
  }
  return tf.reshape(tf.mul(tf.concat(rows, 0), m), filterShape);
}

// ---- kernel functions ----

function nhwc(t: Tensor4D, format: unknown): Tensor4D {
  return format === 'NCHW' ? tf.transpose(t, [0, 2, 3, 1]) : t;
}
function nhwcShape(shape: number[], format: unknown): [number, number, number, number] {
  const [a, b, c, d] = shape;
  return (format === 'NCHW' ? [a, c, d, b] : [a, b, c, d]) as [number, number, number, number];
}
function assertDilationOne(dilations: unknown, op: string): void {
  const d =
    dilations == null
      ? [1, 1]
      : typeof dilations === 'number'
        ? [dilations, dilations]
        : (dilations as number[]);
  if (d.some((v) => v !== 1))
    throw new Error(`${op} (wasm gradient kernel): dilations must be 1, got ${String(dilations)}`);
}

export function conv2dBackpropInputKernel({ inputs, attrs }: KernelArgs): TensorInfo {
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } =
    attrs as unknown as tf.Conv2DBackpropInputAttrs;
  return tf.tidy(() => {
    const dy = nhwc(asTensor<Tensor4D>(inputs.dy), dataFormat);
    const filter = asTensor<Tensor4D>(inputs.filter);
    const dx = conv2dInputGrad(
      nhwcShape(inputShape, dataFormat),
      dy,
      filter,
      strides,
      pad as Pad,
      dimRoundingMode,
    );
    return dataFormat === 'NCHW' ? tf.transpose(dx, [0, 3, 1, 2]) : dx;
  });
}

/**
 * dW of conv2d straight from the padded phase grid of x: per tap, one SIMD product whose left
 * operand is a view of the grid at the tap's shift (x(m, ci)ᵀ · dy(m, co) → the tap's [ci, co]
 * block of the filter), so no shifted copy of x is made. A view runs up to `shift` rows past the
 * end of its phase; those rows meet zero rows of dy's grid (the taps of real outputs stay inside
 * the grid) and the tail of zero rows keeps them finite. Null where the SIMD kernel is missing.
 */
function conv2dFilterGradWasm(
  backend: KernelBackend,
  xInfo: TensorInfo,
  dyInfo: TensorInfo,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: Pad,
  rounding: Rounding,
): TensorInfo | null {
  const be = backend as unknown as WasmBackendLike;
  if (xInfo.dtype !== 'float32' || dyInfo.dtype !== 'float32' || !simdMatMulAvailable(be)) return null;
  const [kh, kw, ci, co] = filterShape;
  const xShape = xInfo.shape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad, rounding, false);
  const [n, h, w] = xShape;
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const out = be.makeOutput(filterShape, 'float32');
  try {
    if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && info.outHeight === h && info.outWidth === w) {
      simdMatMulAt(
        be,
        offsetOf(be, xInfo),
        offsetOf(be, dyInfo),
        offsetOf(be, out),
        [ci, n * h * w, co],
        true,
        false,
      );
      return out;
    }
    const gh = info.outHeight + Math.floor((kh - 1) / sh);
    const gw = info.outWidth + Math.floor((kw - 1) / sw);
    const m = n * gh * gw;
    const tail = Math.floor((kh - 1) / sh) * gw + Math.floor((kw - 1) / sw);
    tf.tidy(() => {
      const grid = phaseSplit(asTensor(xInfo), {
        sh,
        sw,
        gh,
        gw,
        pt: info.padInfo.top,
        pl: info.padInfo.left,
        channelsFirst: false,
        tail,
      });
      const dyp = gridDy(asTensor<Tensor4D>(dyInfo), gh, gw);
      for (let t = 0; t < kh * kw; t++) {
        const a = Math.floor(t / kw);
        const b = t % kw;
        const row = ((a % sh) * sw + (b % sw)) * m + Math.floor(a / sh) * gw + Math.floor(b / sw);
        simdMatMulAt(
          be,
          offsetOf(be, grid) + row * ci * 4,
          offsetOf(be, dyp),
          offsetOf(be, out) + t * ci * co * 4,
          [ci, m, co],
          true,
          false,
        );
      }
    });
    return out;
  } catch (e) {
    be.disposeData(out.dataId, true);
    throw e;
  }
}

export function conv2dBackpropFilterKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (dataFormat !== 'NCHW') {
    const dw = conv2dFilterGradWasm(
      backend,
      inputs.x as TensorInfo,
      inputs.dy as TensorInfo,
      filterShape,
      strides,
      pad as Pad,
      dimRoundingMode,
    );
    if (dw) return dw;
  }
  return tf.tidy(() => {
    const x = nhwc(asTensor<Tensor4D>(inputs.x), dataFormat);
    const dy = nhwc(asTensor<Tensor4D>(inputs.dy), dataFormat);
    return conv2dFilterGrad(x, dy, filterShape, strides, pad as Pad, dimRoundingMode);
  });
}

export function depthwiseBackpropInputKernel({ inputs, attrs }: KernelArgs): TensorInfo {
  const { strides, dilations, pad, dimRoundingMode, inputShape } =
    attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  assertDilationOne(dilations, 'DepthwiseConv2dNativeBackpropInput');
  return tf.tidy(() =>
    depthwiseInputGrad(
      inputShape,
      asTensor<Tensor4D>(inputs.dy),
      asTensor<Tensor4D>(inputs.filter),
      strides,
      pad as Pad,
      dimRoundingMode,
    ),
  );
}

export function depthwiseBackpropFilterKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { strides, dilations, pad, dimRoundingMode, filterShape } =
    attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  assertDilationOne(dilations, 'DepthwiseConv2dNativeBackpropFilter');
  const x = inputs.x as TensorInfo;
  const dy = inputs.dy as TensorInfo;
  if (filterShape[3] === 1) {
    // Multiplier 1 (TinyViT's depthwise convs): one SIMD pass, no map-sized temporaries.
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filterShape,
      strides,
      1,
      pad as Pad,
      dimRoundingMode,
      true,
      'channelsLast',
    );
    const dw = depthwiseFilterGradWasm(backend as unknown as WasmBackendLike, x, dy, info);
    if (dw) return dw;
  }
  return tf.tidy(() =>
    depthwiseFilterGrad(
      asTensor<Tensor4D>(inputs.x),
      asTensor<Tensor4D>(inputs.dy),
      filterShape,
      strides,
      pad as Pad,
      dimRoundingMode,
    ),
  );
}
