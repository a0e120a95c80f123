// Shared helpers for the wasm gradient kernels.
import type { KernelBackend, NamedAttrMap, Tensor, Tensor4D, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from '../tf.js';

/** The parts of tfjs-backend-wasm's BackendWasm these kernels touch. */
export interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32' | 'int32' | 'bool'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

export function asWasm(backend: KernelBackend): WasmBackendLike {
  return backend as unknown as WasmBackendLike;
}

/**
 * A Tensor for a kernel input. Ops hand kernels their Tensors; other callers may pass bare
 * TensorInfos, which get a ref-counted Tensor wrapper through the Identity kernel.
 */
export function asTensor<T extends Tensor = Tensor>(info: TensorInfo | undefined): T {
  if (info == null) throw new Error('gradient kernel: missing input');
  if (info instanceof tf.Tensor) return info as T;
  return tf.engine().runKernel('Identity', { x: info as unknown as Tensor }) as T;
}

/** Pads (positive amounts) or crops (negative amounts) the two spatial axes of an NHWC tensor. */
export function padOrCrop(x: Tensor4D, top: number, bottom: number, left: number, right: number): Tensor4D {
  const [n, h, w, c] = x.shape;
  let y = x;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const t = Math.max(0, -top);
    const l = Math.max(0, -left);
    const hh = h - t - Math.max(0, -bottom);
    const ww = w - l - Math.max(0, -right);
    y = tf.slice(y, [0, t, l, 0], [n, hh, ww, c]);
  }
  const pt = Math.max(0, top);
  const pb = Math.max(0, bottom);
  const pl = Math.max(0, left);
  const pr = Math.max(0, right);
  if (pt || pb || pl || pr) {
    y = tf.pad(y, [
      [0, 0],
      [pt, pb],
      [pl, pr],
      [0, 0],
    ]);
  }
  return y;
}

/** Swaps the last two axes. */
export function swapLast(x: Tensor): Tensor {
  const r = x.rank;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

/** Name of the helper kernel that copies flat windows of a wasm tensor (zero-filling past a bound). */
export const WINDOWS_KERNEL = 'MedsamWasmWindows';

export interface WindowsAttrs {
  /** Flat start offset of each window. */
  starts: number[];
  /** Flat offset where each window's source ends; elements at or past it read as 0. */
  ends: number[];
  /** Window length. */
  len: number;
}

/**
 * out[w, i] = x.flat[starts[w] + i] when starts[w] + i < ends[w], else 0; out has shape
 * [starts.length, len]. Runs as plain heap copies (memmove), so a shifted view of a big
 * tensor costs one pass over memory instead of a Slice kernel (which copies the whole input).
 */
export function windowsKernel({
  inputs,
  backend,
  attrs,
}: {
  inputs: { x?: TensorInfo };
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}): TensorInfo {
  const x = inputs.x as TensorInfo;
  const { starts, ends, len } = attrs as unknown as WindowsAttrs;
  if (x.dtype !== 'float32') throw new Error(`${WINDOWS_KERNEL}: float32 only, got ${x.dtype}`);
  const be = asWasm(backend);
  const size = x.shape.reduce((p, d) => p * d, 1);
  const out = be.makeOutput([starts.length, len], 'float32');
  // Views after makeOutput: allocating may grow (and so replace) the wasm heap.
  const heap = new Float32Array(be.wasm.HEAPU8.buffer);
  const src = be.dataIdMap.get(x.dataId).memoryOffset >>> 2; // unsigned: heap offsets can pass 2 GiB
  const dst = be.dataIdMap.get(out.dataId).memoryOffset >>> 2; // unsigned: heap offsets can pass 2 GiB
  for (let w = 0; w < starts.length; w++) {
    const s = starts[w];
    const e = Math.min(ends[w], size, s + len);
    const n = Math.max(0, e - s);
    const o = dst + w * len;
    if (n > 0) heap.copyWithin(o, src + s, src + s + n);
    if (n < len) heap.fill(0, o + n, o + len);
  }
  return out;
}

export function windows(x: Tensor, starts: number[], ends: number[], len: number): Tensor {
  const attrs: WindowsAttrs = { starts, ends, len };
  return tf.engine().runKernel(WINDOWS_KERNEL, { x }, attrs as unknown as NamedAttrMap) as Tensor;
}

/** Name of the helper kernel that pads an NHWC tensor and splits out its stride phases. */
export const PHASES_KERNEL = 'MedsamWasmPhaseSplit';

export interface PhaseAttrs {
  sh: number;
  sw: number;
  /** Phase-grid size. */
  gh: number;
  gw: number;
  /** Zero rows / columns before x. */
  pt: number;
  pl: number;
  /** Output [sh*sw*C, N*gh*gw] instead of [sh*sw*N*gh*gw, C]. */
  channelsFirst: boolean;
  /** Zero rows appended to the channels-last output ([sh*sw*N*gh*gw + tail, C]). */
  tail?: number;
}

/**
 * Phase split of zero-padded x [N, H, W, C]: phase (p, q), grid point (n, i, j) holds
 * xpad[n, i*sh + p, j*sw + q, :] where xpad[.., y, x, ..] = x[.., y - pt, x - pl, ..] (0 outside).
 * Replaces a pad plus a 6-D transpose, which is very slow on wasm (~250 ns per element).
 */
export function phaseSplitKernel({
  inputs,
  backend,
  attrs,
}: {
  inputs: { x?: TensorInfo };
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}): TensorInfo {
  const x = inputs.x as TensorInfo;
  const { sh, sw, gh, gw, pt, pl, channelsFirst, tail = 0 } = attrs as unknown as PhaseAttrs;
  if (x.dtype !== 'float32') throw new Error(`${PHASES_KERNEL}: float32 only, got ${x.dtype}`);
  if (channelsFirst && tail) throw new Error(`${PHASES_KERNEL}: tail rows need the channels-last layout`);
  const [n, h, w, c] = x.shape;
  const m = n * gh * gw;
  const be = asWasm(backend);
  const out = be.makeOutput(channelsFirst ? [sh * sw * c, m] : [sh * sw * m + tail, c], 'float32');
  const heap = new Float32Array(be.wasm.HEAPU8.buffer);
  const src = be.dataIdMap.get(x.dataId).memoryOffset >>> 2; // unsigned: heap offsets can pass 2 GiB
  const dst = be.dataIdMap.get(out.dataId).memoryOffset >>> 2; // unsigned: heap offsets can pass 2 GiB
  heap.fill(0, dst, dst + (sh * sw * m + tail) * c);
  for (let p = 0; p < sh; p++) {
    for (let q = 0; q < sw; q++) {
      const phase = p * sw + q;
      for (let b = 0; b < n; b++) {
        for (let i = 0; i < gh; i++) {
          const y = i * sh + p - pt;
          if (y < 0 || y >= h) continue;
          if (sw === 1 && !channelsFirst) {
            // stride 1 along rows: the row's pixels are one run (grid j holds x column j - pl)
            const j0 = Math.max(0, pl);
            const j1 = Math.min(gw, w + pl);
            if (j1 > j0) {
              const s0 = src + ((b * h + y) * w + j0 - pl) * c;
              heap.copyWithin(dst + (phase * m + (b * gh + i) * gw + j0) * c, s0, s0 + (j1 - j0) * c);
            }
            continue;
          }
          for (let j = 0; j < gw; j++) {
            const xx = j * sw + q - pl;
            if (xx < 0 || xx >= w) continue;
            const s0 = src + ((b * h + y) * w + xx) * c;
            const pos = (b * gh + i) * gw + j;
            if (channelsFirst) {
              let d = dst + phase * c * m + pos;
              for (let k = 0; k < c; k++, d += m) heap[d] = heap[s0 + k];
            } else {
              heap.copyWithin(dst + (phase * m + pos) * c, s0, s0 + c);
            }
          }
        }
      }
    }
  }
  return out;
}

export function phaseSplit(x: Tensor, attrs: PhaseAttrs): Tensor {
  return tf.engine().runKernel(PHASES_KERNEL, { x }, attrs as unknown as NamedAttrMap) as Tensor;
}

/** Name of the helper kernel that interleaves stride phases back into an NHWC tensor. */
export const MERGE_KERNEL = 'MedsamWasmPhaseMerge';

export interface MergeAttrs {
  sh: number;
  sw: number;
  /** Output height / width (the interleaved grid is cropped to it). */
  h: number;
  w: number;
}

/**
 * out[n, u*sh + p, v*sw + q, c] = x[n, u, v, (p*sw + q)*C + c] for x [N, U, V, sh*sw*C],
 * cropped to [N, h, w, C] (the inverse of a channels-last phase split). Runs of C floats. The
 * phases may also come as separate inputs x0 … x{sh*sw-1}, each [N, U, V, C], which saves their
 * concatenation (a slow strided copy on wasm when C is small).
 */
export function phaseMergeKernel({
  inputs,
  backend,
  attrs,
}: {
  inputs: Record<string, TensorInfo | undefined>;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}): TensorInfo {
  const { sh, sw, h, w } = attrs as unknown as MergeAttrs;
  const parts = inputs.x ? [inputs.x] : Array.from({ length: sh * sw }, (_, i) => inputs[`x${i}`]);
  if (parts.some((p) => !p || p.dtype !== 'float32'))
    throw new Error(`${MERGE_KERNEL}: float32 inputs x or x0…x${sh * sw - 1} required`);
  const [n, u, v, cc] = parts[0]!.shape;
  const c = parts.length === 1 ? cc / (sh * sw) : cc;
  const be = asWasm(backend);
  const out = be.makeOutput([n, h, w, c], 'float32');
  const heap = new Float32Array(be.wasm.HEAPU8.buffer);
  // unsigned: heap offsets can pass 2 GiB
  const srcs = parts.map((p) => be.dataIdMap.get(p!.dataId).memoryOffset >>> 2);
  const dst = be.dataIdMap.get(out.dataId).memoryOffset >>> 2;
  heap.fill(0, dst, dst + n * h * w * c);
  // Element offset of phase `ph` at grid point (b, i, j).
  const at =
    parts.length === 1
      ? (ph: number, pix: number) => srcs[0] + pix * cc + ph * c
      : (ph: number, pix: number) => srcs[ph] + pix * c;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < u; i++) {
      for (let p = 0; p < sh; p++) {
        const y = i * sh + p;
        if (y >= h) continue;
        for (let j = 0; j < v; j++) {
          const pix = (b * u + i) * v + j;
          for (let q = 0; q < sw; q++) {
            const xx = j * sw + q;
            if (xx >= w) continue;
            const from = at(p * sw + q, pix);
            heap.copyWithin(dst + ((b * h + y) * w + xx) * c, from, from + c);
          }
        }
      }
    }
  }
  return out;
}

/** Interleaves phases given concatenated on the last axis (one tensor) or one tensor per phase. */
export function phaseMerge(x: Tensor | Tensor[], attrs: MergeAttrs): Tensor {
  const inputs = Array.isArray(x) ? Object.fromEntries(x.map((t, i) => [`x${i}`, t])) : { x };
  return tf.engine().runKernel(MERGE_KERNEL, inputs, attrs as unknown as NamedAttrMap) as Tensor;
}

/** Largest number of float32 elements a temporary im2col-style buffer may hold (256 MB). */
export const MAX_TEMP_ELEMENTS = 1 << 26;
