/** What a pipeline returns, and the timing it reports. */
import type { Box, NdArray } from '@mcp-medsam/io';

/** One decoder call, in the order the original script makes them. */
export interface DecoderCall {
  /** 1-based box index. */
  box: number;
  /** Slice index in 3D, null in 2D. */
  z: number | null;
  /** The prompt encoder's box in the 256 frame. */
  box256: Box;
  /** The box the content crop was cut from, at original resolution. */
  cropBox: Box;
  iou: number;
  /** Mask pixels at original resolution. */
  fgPx: number;
}

/** Output of `segment2D` / `segment3D`. */
export interface SegmentResult {
  /** uint8 (H,W) or (D,H,W); uint16 with more than 255 boxes. */
  segs: NdArray;
  calls: DecoderCall[];
  /** Per call (same order as `calls`), when `keepLogits` was set: 256 x 256 values. */
  lowResLogits?: Float32Array[];
  /** Seconds spent per stage. */
  seconds: Record<string, number>;
  /** 3D: slices encoded and embedding-cache hits. */
  slices?: { encoded: number; cacheHits: number };
}

/** Accumulates wall time per stage name. */
export class Stopwatch {
  readonly #totals = new Map<string, number>();

  #add(stage: string, t0: number): void {
    this.#totals.set(stage, (this.#totals.get(stage) ?? 0) + (performance.now() - t0) / 1000);
  }

  sync<T>(stage: string, fn: () => T): T {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      this.#add(stage, t0);
    }
  }

  async async<T>(stage: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.#add(stage, t0);
    }
  }

  totals(): Record<string, number> {
    return Object.fromEntries(this.#totals);
  }
}
