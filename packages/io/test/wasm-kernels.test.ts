import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  normalizeAndPad,
  resizeAntialiasRegionU8,
  resizeAreaU8,
  setWasmKernels,
  wasmKernelMode,
  wasmKernelStatus,
} from '../src/index.js';
import { padNormalized } from '../src/preprocess/inference.js';

/** Deterministic bytes (a 32-bit LCG's top byte). */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) out[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
}

/** `fn` under each implementation: [wasm result, js result]. */
function both<T>(fn: () => T): [T, T] {
  try {
    setWasmKernels('wasm');
    const a = fn();
    setWasmKernels('js');
    return [a, fn()];
  } finally {
    setWasmKernels('auto');
  }
}

/** Same length and bits (a plain loop: a deep `toEqual` of large buffers is slow). */
function sameBits(a: Float32Array, b: Float32Array): void {
  expect(a.length).toBe(b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let i = 0;
  while (i < x.length && x[i] === y[i]) i++;
  if (i < x.length) expect(`value ${i}: ${a[i]}`).toBe(`value ${i}: ${b[i]}`);
}

afterEach(() => setWasmKernels('auto'));

describe('io wasm kernels', () => {
  it('are used by default on this platform', () => {
    expect(wasmKernelMode()).toBe('auto');
    expect(wasmKernelStatus()).toEqual({ antialias: 'wasm', normalize: 'wasm', area: 'wasm' });
  });

  it('resizeAntialiasRegionU8: wasm and JS agree bit for bit (random sizes, boxes, flips)', () => {
    fc.assert(
      fc.property(
        fc.record({
          h: fc.integer({ min: 1, max: 120 }),
          w: fc.integer({ min: 1, max: 120 }),
          c: fc.constantFrom(1, 3),
          seed: fc.integer({ min: 0, max: 1 << 30 }),
          r: fc.array(fc.double({ min: 0, max: 0.999, noNaN: true }), { minLength: 4, maxLength: 4 }),
          // Sizes above and below the crop side, and (sometimes) equal to it: a skipped pass.
          sizes: fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 3 }),
          sameAsCrop: fc.boolean(),
          flipH: fc.boolean(),
          flipV: fc.boolean(),
        }),
        ({ h, w, c, seed, r, sizes, sameAsCrop, flipH, flipV }) => {
          const src = bytes(h * w * c, seed);
          const xa = Math.floor(r[0] * w);
          const xb = Math.floor(r[1] * w);
          const ya = Math.floor(r[2] * h);
          const yb = Math.floor(r[3] * h);
          const region: [number, number, number, number] = [
            Math.min(xa, xb),
            Math.min(ya, yb),
            Math.max(xa, xb) + 1,
            Math.max(ya, yb) + 1,
          ];
          const all = sameAsCrop ? [...sizes, region[2] - region[0], region[3] - region[1]] : sizes;
          const [got, want] = both(() =>
            resizeAntialiasRegionU8(src, h, w, c, region, all, { flipH, flipV }),
          );
          expect(got.map((a) => a.length)).toEqual(all.map((z) => c * z * z));
          for (let i = 0; i < all.length; i++) sameBits(got[i], want[i]);
        },
      ),
      { numRuns: 300, seed: 20261127 },
    );
  });

  it('resizeAntialiasRegionU8: wide windows and the training sizes agree too', () => {
    // Crops much larger than 64 (windows of dozens of taps) and smaller than 224 (upsampling).
    const cases: [number, number, number, [number, number, number, number]][] = [
      [700, 900, 3, [13, 40, 881, 650]],
      [300, 40, 3, [0, 0, 40, 300]],
      [512, 512, 1, [100, 7, 161, 500]],
      [90, 1300, 3, [3, 1, 1297, 89]],
    ];
    let seed = 1;
    for (const [h, w, c, region] of cases) {
      const src = bytes(h * w * c, seed++);
      for (const flips of [{}, { flipH: true }, { flipV: true }, { flipH: true, flipV: true }]) {
        const [got, want] = both(() => resizeAntialiasRegionU8(src, h, w, c, region, [64, 224], flips));
        sameBits(got[0], want[0]);
        sameBits(got[1], want[1]);
      }
    }
  });

  it('padNormalized / normalizeAndPad: wasm and JS agree bit for bit', () => {
    fc.assert(
      fc.property(
        fc.record({
          size: fc.integer({ min: 1, max: 64 }),
          fh: fc.double({ min: 0, max: 1, noNaN: true }),
          fw: fc.double({ min: 0, max: 1, noNaN: true }),
          c: fc.constantFrom(1, 3),
          seed: fc.integer({ min: 0, max: 1 << 30 }),
          flipH: fc.boolean(),
          flipV: fc.boolean(),
          intoOut: fc.boolean(),
        }),
        ({ size, fh, fw, c, seed, flipH, flipV, intoOut }) => {
          const newH = Math.max(1, Math.round(fh * size));
          const newW = Math.max(1, Math.round(fw * size));
          const resized = bytes(newH * newW * c, seed);
          const lut = Float32Array.from({ length: 256 }, (_, v) => Math.fround((v * 0.37) % 1));
          const [a, b] = both(() => {
            // A dirty output buffer: the padding must be zeroed.
            const out = intoOut ? new Float32Array(3 * size * size + 5).fill(7) : undefined;
            return padNormalized(resized, newH, newW, c, lut, size, out, { flipH, flipV });
          });
          sameBits(a, b);
          const [p, q] = both(() => normalizeAndPad(resized, newH, newW, c, size));
          sameBits(p, q);
        },
      ),
      { numRuns: 200, seed: 20261128 },
    );
  });

  it('resizeAreaU8 (general shrink): wasm and JS agree bit for bit', () => {
    fc.assert(
      fc.property(
        fc.record({
          h: fc.integer({ min: 2, max: 300 }),
          w: fc.integer({ min: 2, max: 300 }),
          c: fc.constantFrom(1, 3),
          seed: fc.integer({ min: 0, max: 1 << 30 }),
          // Output sides at most the input's: integer factors take the JS fast path, the rest
          // the general shrink.
          fy: fc.double({ min: 0.01, max: 1, noNaN: true }),
          fx: fc.double({ min: 0.01, max: 1, noNaN: true }),
        }),
        ({ h, w, c, seed, fy, fx }) => {
          const outH = Math.max(1, Math.floor(h * fy));
          const outW = Math.max(1, Math.floor(w * fx));
          const src = bytes(h * w * c, seed);
          const [a, b] = both(() => resizeAreaU8(src, h, w, c, outH, outW));
          expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
        },
      ),
      { numRuns: 200, seed: 20261129 },
    );
    // The training case sizes (3 channels, longest side to 256) and a grey one.
    for (const [h, w, c] of [
      [530, 622, 3],
      [1070, 1348, 3],
      [957, 440, 1],
    ]) {
      const src = bytes(h * w * c, h);
      const s = 256 / Math.max(h, w);
      const [a, b] = both(() => resizeAreaU8(src, h, w, c, Math.trunc(h * s + 0.5), Math.trunc(w * s + 0.5)));
      expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    }
  });

  it('the switch: js and auto modes, the environment, and a bad mode', () => {
    setWasmKernels('js');
    expect(wasmKernelStatus()).toEqual({ antialias: 'js', normalize: 'js', area: 'js' });
    setWasmKernels('auto');
    expect(wasmKernelStatus()).toEqual({ antialias: 'wasm', normalize: 'wasm', area: 'wasm' });
    vi.stubEnv('MCP_MEDSAM_IO_WASM', '0');
    try {
      expect(wasmKernelStatus()).toEqual({ antialias: 'js', normalize: 'js', area: 'js' });
      setWasmKernels('wasm'); // an explicit choice wins over the environment
      expect(wasmKernelStatus()).toEqual({ antialias: 'wasm', normalize: 'wasm', area: 'wasm' });
    } finally {
      vi.unstubAllEnvs();
    }
    expect(() => setWasmKernels('fast' as never)).toThrow(/'auto', 'wasm' or 'js'/);
  });

  it('falls back to JS when WebAssembly cannot instantiate the modules', async () => {
    // A fresh copy of the package, loaded where WebAssembly.Module throws (as it does for a
    // module using SIMD on an engine without it).
    vi.resetModules();
    const real = globalThis.WebAssembly;
    vi.stubGlobal('WebAssembly', {
      ...real,
      Module: function () {
        throw new real.CompileError('SIMD unsupported (test)');
      },
    });
    try {
      const io = await import('../src/index.js');
      expect(io.wasmKernelStatus()).toEqual({ antialias: 'js', normalize: 'js', area: 'js' });
      const src = bytes(50 * 60 * 3, 9);
      const crops = io.resizeAntialiasRegionU8(src, 50, 60, 3, [5, 4, 55, 47], [64, 24], { flipH: true });
      const image = io.normalizeAndPad(src, 50, 60, 3, 64);
      const area = io.resizeAreaU8(src, 50, 60, 3, 21, 37);
      // A required kernel that cannot load is an error, not a silent fallback.
      expect(() => io.setWasmKernels('wasm')).not.toThrow();
      expect(() => io.wasmKernelStatus()).toThrow(/cannot be instantiated.*SIMD unsupported/);
      io.setWasmKernels('auto');
      vi.unstubAllGlobals();
      // The same module instance, now able to instantiate (failures are retried after a switch).
      io.setWasmKernels('auto');
      expect(io.wasmKernelStatus()).toEqual({ antialias: 'wasm', normalize: 'wasm', area: 'wasm' });
      const crops2 = io.resizeAntialiasRegionU8(src, 50, 60, 3, [5, 4, 55, 47], [64, 24], { flipH: true });
      sameBits(crops[0], crops2[0]);
      sameBits(crops[1], crops2[1]);
      sameBits(image, io.normalizeAndPad(src, 50, 60, 3, 64));
      expect(Buffer.compare(Buffer.from(area), Buffer.from(io.resizeAreaU8(src, 50, 60, 3, 21, 37)))).toBe(0);
    } finally {
      vi.unstubAllGlobals();
      vi.resetModules();
    }
  });
});
