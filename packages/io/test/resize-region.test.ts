import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resizeAntialiasPlanes, resizeAntialiasRegionU8, toTensorU8 } from '../src/index.js';

/** The two-step path the fused resize replaces: float crop, optional flips, one resize per size. */
function reference(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  region: [number, number, number, number],
  sizes: number[],
  flipH: boolean,
  flipV: boolean,
): Float32Array[] {
  const [x0, y0, x1, y1] = region;
  const ch = y1 - y0;
  const cw = x1 - x0;
  const t = toTensorU8(src, h, w, c, region);
  const f = new Float32Array(t.length);
  for (let k = 0; k < c; k++)
    for (let y = 0; y < ch; y++)
      for (let x = 0; x < cw; x++) {
        const sy = flipV ? ch - 1 - y : y;
        const sx = flipH ? cw - 1 - x : x;
        f[(k * ch + y) * cw + x] = t[(k * ch + sy) * cw + sx];
      }
  return sizes.map((s) => resizeAntialiasPlanes(f, c, ch, cw, s, s));
}

describe('resizeAntialiasRegionU8', () => {
  it('equals toTensor + flips + resizeAntialiasPlanes bit for bit', () => {
    fc.assert(
      fc.property(
        fc.record({
          h: fc.integer({ min: 1, max: 90 }),
          w: fc.integer({ min: 1, max: 90 }),
          c: fc.constantFrom(1, 3),
          seed: fc.integer({ min: 0, max: 1 << 30 }),
          r: fc.array(fc.double({ min: 0, max: 0.999, noNaN: true }), { minLength: 4, maxLength: 4 }),
          sizes: fc.array(fc.integer({ min: 1, max: 80 }), { minLength: 1, maxLength: 3 }),
          flipH: fc.boolean(),
          flipV: fc.boolean(),
        }),
        ({ h, w, c, seed, r, sizes, flipH, flipV }) => {
          const src = new Uint8Array(h * w * c);
          let s = seed;
          for (let i = 0; i < src.length; i++) src[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
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
          const got = resizeAntialiasRegionU8(src, h, w, c, region, sizes, { flipH, flipV });
          const want = reference(src, h, w, c, region, sizes, flipH, flipV);
          expect(got.map((a) => a.length)).toEqual(sizes.map((z) => c * z * z));
          for (let i = 0; i < sizes.length; i++)
            expect(Buffer.from(got[i].buffer)).toEqual(Buffer.from(want[i].buffer));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('includes the crop sizes equal to the region (a skipped pass)', () => {
    const src = Uint8Array.from({ length: 20 * 30 * 3 }, (_, i) => (i * 37) % 256);
    const [a, b] = resizeAntialiasRegionU8(src, 20, 30, 3, [5, 2, 15, 12], [10, 4]);
    const want = reference(src, 20, 30, 3, [5, 2, 15, 12], [10, 4], false, false);
    expect(Array.from(a)).toEqual(Array.from(want[0]));
    expect(Array.from(b)).toEqual(Array.from(want[1]));
    // size 10 = the region's side: ToTensor values themselves
    expect(a[0]).toBe(Math.fround(src[(2 * 30 + 5) * 3] / 255));
  });

  it('rejects an empty or outside region with the region in the message', () => {
    const src = new Uint8Array(10 * 10);
    expect(() => resizeAntialiasRegionU8(src, 10, 10, 1, [3, 3, 3, 8], [4])).toThrow(/\[3, 3, 3, 8\]/);
    expect(() => resizeAntialiasRegionU8(src, 10, 10, 1, [0, 0, 11, 5], [4])).toThrow(/outside the 10 x 10/);
  });
});
