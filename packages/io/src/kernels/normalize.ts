/**
 * The WebAssembly kernel behind `padNormalized` (wasm/normalize.wat): table look-ups written
 * into the padded, optionally flipped 3-plane frame, the same bits as the JS path, about twice
 * as fast (it is the largest per-sample cost of a training sample after the content crops).
 */
import { WASM_BASE64 } from './generated/normalize.js';
import { align16, kernelExports, WasmHeap } from './wasm.js';

/** One image row of `row3` (RGB) or `row1` (grey): look-ups written into the padded planes. */
type RowKernel = (
  src: number,
  n: number,
  lut: number,
  dst: number,
  dx: number,
  plane: number,
  pad: number,
  padBytes: number,
) => void;

interface NormExports {
  memory: WebAssembly.Memory;
  row3: RowKernel;
  row1: RowKernel;
}

let kernel: NormWasmKernel | undefined;

/** The wasm kernel, or null when the JS path is to run (see `setWasmKernels`). */
export function normalizeWasm(): NormWasmKernel | null {
  const x = kernelExports('normalize', WASM_BASE64) as unknown as NormExports | null;
  if (!x) return null;
  if (kernel?.exports !== x) kernel = new NormWasmKernel(x);
  return kernel;
}

const LUT_BYTES = 256 * 4;

export class NormWasmKernel {
  private readonly heap: WasmHeap;

  constructor(readonly exports: NormExports) {
    this.heap = new WasmHeap(exports.memory);
  }

  /**
   * `padNormalized` after its checks (c is 1 or 3). Into `out` when given, else a new array.
   * Null when the memory cannot grow enough (the caller runs the JS path).
   */
  pad(
    resized: Uint8Array,
    newH: number,
    newW: number,
    c: number,
    lut: Float32Array,
    size: number,
    out: Float32Array | undefined,
    flipH: boolean,
    flipV: boolean,
  ): Float32Array | null {
    const plane = size * size;
    const srcAt = LUT_BYTES;
    const dstAt = align16(srcAt + newH * newW * c);
    const dstBytes = 3 * plane * 4;
    if (!this.heap.reserve(dstAt + dstBytes)) return null;
    const heap = this.heap.buffer;
    const u8 = this.heap.u8;
    new Float32Array(heap, 0, 256).set(lut.subarray(0, 256));
    u8.set(resized.subarray(0, newH * newW * c), srcAt);
    // The content lands in rows [r0, r0 + newH) of each plane, at the left of a row (at the
    // right when flipped); only the rest is zeroed: whole rows here, the row kernel does the
    // padding columns of the rows it writes.
    const r0 = flipV ? size - newH : 0;
    const f32 = new Float32Array(heap, dstAt, 3 * plane);
    for (let k = 0; k < 3; k++) {
      f32.fill(0, k * plane, k * plane + r0 * size);
      f32.fill(0, k * plane + (r0 + newH) * size, (k + 1) * plane);
    }
    const padCol = flipH ? 0 : newW;
    const padBytes = 4 * (size - newW);
    const row = c === 3 ? this.exports.row3 : this.exports.row1;
    for (let y = 0; y < newH; y++) {
      const r = (flipV ? size - 1 - y : y) * size;
      const o = r + (flipH ? size - 1 : 0);
      row(
        srcAt + y * newW * c,
        newW,
        0,
        dstAt + 4 * o,
        flipH ? -4 : 4,
        4 * plane,
        dstAt + 4 * (r + padCol),
        padBytes,
      );
    }
    if (out) {
      out.set(new Float32Array(heap, dstAt, 3 * plane));
      return out;
    }
    return new Float32Array(heap.slice(dstAt, dstAt + dstBytes));
  }
}
