/**
 * The WebAssembly kernel behind the general shrink of `resizeAreaU8` (wasm/area.wat) for 1 and
 * 3 channels: the same bits as the JS path, several times faster. It is most of the cost of
 * preparing a training slice, which a loader pays on every case it meets for the first time
 * (in each worker).
 */
import { WASM_BASE64 } from './generated/area.js';
import { align16, kernelExports, WasmHeap } from './wasm.js';

interface AreaExports {
  memory: WebAssembly.Memory;
  hrow3(src: number, outW: number, start: number, xsi: number, xal: number, buf: number): void;
  hrow1(src: number, outW: number, start: number, xsi: number, xal: number, buf: number): void;
  vrow(buf: number, sum: number, beta: number, n: number, first: number): void;
  vstore(sum: number, dst: number, n: number): void;
}

/** The entries of one axis of OpenCV's area table: (dst index, src index, weight), in order. */
export interface AreaTabLike {
  n: number;
  di: Int32Array;
  si: Int32Array;
  alpha: Float32Array;
}

let kernel: AreaWasmKernel | undefined;

/** The wasm kernel, or null when the JS path is to run (see `setWasmKernels`). */
export function areaWasm(): AreaWasmKernel | null {
  const x = kernelExports('area', WASM_BASE64) as unknown as AreaExports | null;
  if (!x) return null;
  if (kernel?.exports !== x) kernel = new AreaWasmKernel(x);
  return kernel;
}

export class AreaWasmKernel {
  private readonly heap: WasmHeap;

  constructor(readonly exports: AreaExports) {
    this.heap = new WasmHeap(exports.memory);
  }

  /**
   * The general shrink of uint8 (h, w, c) rows of `src` (c = 1 or 3) into `dst` (outH, outW, c),
   * with the JS path's tables (`start[d]` = first x-table entry of output column d). False when
   * the memory cannot grow enough (the caller runs the JS path).
   */
  general(
    src: Uint8Array,
    w: number,
    c: 1 | 3,
    outW: number,
    outH: number,
    xtab: AreaTabLike,
    ytab: AreaTabLike,
    start: Int32Array,
    dst: Uint8Array,
  ): boolean {
    const rowBytes = w * c;
    const outRow = outW * c;
    // Whole vectors, plus the fourth lane hrow3 writes past the last column.
    const padded = ((outRow + 3) & ~3) + 4;
    let top = 0;
    const at = (bytes: number) => {
      const p = top;
      top = align16(top + bytes);
      return p;
    };
    const rowAt = at(rowBytes + 4);
    const startAt = at(4 * (outW + 1));
    const xsiAt = at(4 * xtab.n);
    const xalAt = at(4 * xtab.n);
    const bufAt = at(4 * padded);
    const sumAt = at(4 * padded);
    const dstAt = at(outH * outRow);
    if (!this.heap.reserve(top)) return false;
    const heap = this.heap.buffer;
    const u8 = this.heap.u8;
    new Int32Array(heap, startAt, outW + 1).set(start.subarray(0, outW + 1));
    new Int32Array(heap, xsiAt, xtab.n).set(xtab.si.subarray(0, xtab.n));
    new Float32Array(heap, xalAt, xtab.n).set(xtab.alpha.subarray(0, xtab.n));
    const { vrow, vstore } = this.exports;
    const hrow = c === 3 ? this.exports.hrow3 : this.exports.hrow1;
    let prevDy = ytab.di[0];
    let prevSy = -1;
    for (let j = 0; j < ytab.n; j++) {
      const sy = ytab.si[j];
      const dy = ytab.di[j];
      // A source row straddling two output rows comes twice in a row: its buf is reused.
      if (sy !== prevSy) {
        u8.set(src.subarray(sy * rowBytes, (sy + 1) * rowBytes), rowAt);
        hrow(rowAt, outW, startAt, xsiAt, xalAt, bufAt);
        prevSy = sy;
      }
      const first = j === 0 || dy !== prevDy;
      if (dy !== prevDy) {
        vstore(sumAt, dstAt + prevDy * outRow, outRow);
        prevDy = dy;
      }
      vrow(bufAt, sumAt, ytab.alpha[j], outRow, first ? 1 : 0);
    }
    vstore(sumAt, dstAt + prevDy * outRow, outRow);
    dst.set(u8.subarray(dstAt, dstAt + outH * outRow));
    return true;
  }
}
