/**
 * The WebAssembly SIMD kernel behind `resizeAntialiasRegionU8` (wasm/antialias.wat): the same
 * numbers as the JS path bit for bit, several times faster, since the content crops are most of
 * the cost of a training sample. The module's memory grows to the largest crop seen in the
 * thread and stays allocated.
 */
import type { AaTable } from '../resize/antialias_bilinear.js';
import { WASM_BASE64 } from './generated/antialias.js';
import { align16, kernelExports, WasmHeap } from './wasm.js';

interface AaExports {
  memory: WebAssembly.Memory;
  convert16(t: number, lut: number, n: number, step: number, bases: number): void;
  width16(
    t: number,
    s: number,
    xmin: number,
    xsize: number,
    stride: number,
    w: number,
    out: number,
    row: number,
  ): void;
  height(
    mid: number,
    planes: number,
    hin: number,
    s: number,
    ymin: number,
    ysize: number,
    stride: number,
    w: number,
    dst: number,
  ): void;
}

let kernel: AaWasmKernel | undefined;

/** The wasm kernel, or null when the JS path is to run (see `setWasmKernels`). */
export function antialiasWasm(): AaWasmKernel | null {
  const x = kernelExports('antialias', WASM_BASE64) as unknown as AaExports | null;
  if (!x) return null;
  if (kernel?.exports !== x) kernel = new AaWasmKernel(x);
  return kernel;
}

/** Rows per group: the SIMD lanes of the width pass. */
const LANES = 16;
const LUT_BYTES = 256 * 8;
const BASES_BYTES = LANES * 4;

/** Per-axis table in the kernel's form: weights widened to float64 (exact) once per table. */
const wideWeights = new WeakMap<AaTable, Float64Array>();
function weights64(tab: AaTable): Float64Array {
  let w = wideWeights.get(tab);
  if (!w) wideWeights.set(tab, (w = Float64Array.from(tab.weights)));
  return w;
}

// A width pass to the crop's own width is a copy; a one-tap table with weight 1 (x*1 is exact)
// lets the same kernel produce it.
const identities = new Map<number, AaTable>();
function identityTable(n: number): AaTable {
  let t = identities.get(n);
  if (!t) {
    t = {
      xmin: Int32Array.from({ length: n }, (_, i) => i),
      xsize: new Int32Array(n).fill(1),
      maxSize: 1,
      weights: new Float32Array(n).fill(1),
    };
    if (identities.size >= 16) identities.clear();
    identities.set(n, t);
  }
  return t;
}

/** One instantiated module and its memory. */
export class AaWasmKernel {
  private readonly heap: WasmHeap;

  constructor(readonly exports: AaExports) {
    this.heap = new WasmHeap(exports.memory);
    // v / 255 as float32 (torch's `img.float().div(255)`), stored widened: the kernel reads doubles.
    const lut = new Float64Array(this.heap.buffer, 0, 256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(v / 255);
  }

  /**
   * `resizeAntialiasRegionU8` after its checks: `wTabs[t]` is the width table for `sizes[t]`
   * (null when that size is the crop's width), `hTabs[t]` the height table (null: unchanged).
   * Returns null when the memory cannot grow enough (the caller runs the JS path).
   */
  regionU8(
    src: Uint8Array,
    w: number,
    c: number,
    region: readonly [number, number, number, number],
    sizes: readonly number[],
    wTabs: readonly (AaTable | null)[],
    hTabs: readonly (AaTable | null)[],
    flipH: boolean,
    flipV: boolean,
  ): Float32Array[] | null {
    const [x0, y0, x1, y1] = region;
    const cw = x1 - x0;
    const ch = y1 - y0;
    const rows = c * ch;
    // Rows in groups of LANES; the last group repeats the last row, and its extra results land
    // in padding rows of the width-pass output that nothing reads.
    const groups = Math.ceil(rows / LANES);
    const rowBytes = cw * c;

    // Memory plan: lut | lane bases | region (uint8) | interleaved rows (f64) | per size:
    // tables, width-pass output, height-pass output.
    let top = LUT_BYTES;
    const at = (bytes: number) => {
      const p = top;
      top = align16(top + bytes);
      return p;
    };
    const basesAt = at(BASES_BYTES);
    const regionAt = at(rowBytes * ch);
    const tAt = at(cw * LANES * 8);
    const plan = sizes.map((s, t) => {
      const wt = wTabs[t] ?? identityTable(s);
      const ht = hTabs[t];
      return {
        s,
        wt,
        ht,
        wxmin: at(4 * s),
        wxsize: at(4 * s),
        ww: at(8 * s * wt.maxSize),
        hxmin: ht ? at(4 * s) : 0,
        hxsize: ht ? at(4 * s) : 0,
        hw: ht ? at(8 * s * ht.maxSize) : 0,
        mid: at(4 * groups * LANES * s),
        out: ht ? at(4 * c * s * s) : 0,
      };
    });
    if (!this.heap.reserve(top)) return null;
    const heap = this.heap.buffer;
    const u8 = this.heap.u8;

    if (cw === w) u8.set(src.subarray(y0 * rowBytes, y1 * rowBytes), regionAt);
    else
      for (let y = 0; y < ch; y++) {
        const p = ((y0 + y) * w + x0) * c;
        u8.set(src.subarray(p, p + rowBytes), regionAt + y * rowBytes);
      }
    for (const p of plan) {
      new Int32Array(heap, p.wxmin, p.s).set(p.wt.xmin);
      new Int32Array(heap, p.wxsize, p.s).set(p.wt.xsize);
      new Float64Array(heap, p.ww, p.s * p.wt.maxSize).set(weights64(p.wt));
      if (p.ht) {
        new Int32Array(heap, p.hxmin, p.s).set(p.ht.xmin);
        new Int32Array(heap, p.hxsize, p.s).set(p.ht.xsize);
        new Float64Array(heap, p.hw, p.s * p.ht.maxSize).set(weights64(p.ht));
      }
    }

    const { convert16, width16, height } = this.exports;
    const step = flipH ? -c : c;
    const bases = new Int32Array(heap, basesAt, LANES);
    for (let g = 0; g < groups; g++) {
      for (let l = 0; l < LANES; l++) {
        // Row r of the (c, ch) planes: channel k, crop row y (read from the other end if flipped).
        const r = Math.min(g * LANES + l, rows - 1);
        const k = Math.floor(r / ch);
        const y = r - k * ch;
        const sy = flipV ? ch - 1 - y : y;
        bases[l] = regionAt + sy * rowBytes + (flipH ? (cw - 1) * c : 0) + k;
      }
      convert16(tAt, 0, cw, step, basesAt);
      for (const p of plan)
        width16(tAt, p.s, p.wxmin, p.wxsize, 8 * p.wt.maxSize, p.ww, p.mid + g * LANES * p.s * 4, p.s * 4);
    }
    return plan.map((p) => {
      const n = c * p.s * p.s;
      if (!p.ht) return new Float32Array(heap.slice(p.mid, p.mid + 4 * n));
      height(p.mid, c, ch, p.s, p.hxmin, p.hxsize, 8 * p.ht.maxSize, p.hw, p.out);
      return new Float32Array(heap.slice(p.out, p.out + 4 * n));
    });
  }
}
