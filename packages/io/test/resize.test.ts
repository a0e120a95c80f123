import { readFileSync } from 'node:fs';
import { InputError } from '@mcp-medsam/core';
import { describe, expect, it } from 'vitest';
import { sharedPath } from '../../../test-utils/shared.js';
import {
  longestSideSize,
  ndarray,
  readNpzFile,
  resizeAntialiasBilinear,
  resizeArea,
  resizeBilinear,
  resizeBilinearPlanes,
  resizeLongestSide,
  resizeNearest,
  toTensor,
  toTensorU8,
  type NdArray,
} from '../src/index.js';

interface Case {
  case: string;
  input_shape: number[];
  target_hw: [number, number];
  crop_box: [number, number, number, number];
}

const index = JSON.parse(readFileSync(sharedPath('fixtures/resize/index.json'), 'utf8')) as { cases: Case[] };

/** Number of differing elements (exact). */
function countDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** Max of |a-b| / max(1, |b|). */
function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(e <= m)) m = Number.isNaN(e) ? Infinity : e;
  }
  return m;
}

/** The half-open crop img[y0:y1, x0:x1] of an HWC uint8 image as an NdArray. */
function crop(img: NdArray, box: number[]): NdArray {
  const [h, w] = img.shape;
  const c = img.shape.length === 3 ? img.shape[2] : 1;
  const [x0, y0, x1, y1] = box.map((v, i) => Math.min(v, i % 2 === 0 ? w : h));
  const out = new Uint8Array((y1 - y0) * (x1 - x0) * c);
  let o = 0;
  for (let y = y0; y < y1; y++)
    for (let x = x0; x < x1; x++)
      for (let k = 0; k < c; k++) out[o++] = (img.data as Uint8Array)[(y * w + x) * c + k];
  return ndarray('uint8', img.shape.length === 3 ? [y1 - y0, x1 - x0, c] : [y1 - y0, x1 - x0], out);
}

describe('resize fixtures (OpenCV 4.6 / torch 1.13 / torchvision 0.14)', () => {
  it('lists 18 cases', () => {
    expect(index.cases.length).toBe(18);
  });

  for (const c of index.cases) {
    describe(c.case, () => {
      const load = (() => {
        let p: Promise<Record<string, NdArray>> | undefined;
        return () => (p ??= readNpzFile(sharedPath(`fixtures/resize/${c.case}.npz`)));
      })();

      it('resize-longest-side size', async () => {
        const f = await load();
        const [h, w] = f.img.shape;
        const { newH, newW, scale } = longestSideSize(h, w, 256);
        expect([newH, newW]).toEqual(c.target_hw);
        expect(scale).toBe((f.scale.data as Float64Array)[0]);
      });

      it('INTER_AREA of the image is bit-exact', async () => {
        const f = await load();
        const out = resizeLongestSide(f.img, 256);
        expect(out.shape).toEqual(f.area.shape);
        expect(countDiff(out.data as Uint8Array, f.area.data as Uint8Array)).toBe(0);
      });

      it('INTER_AREA of the label map is bit-exact', async () => {
        const f = await load();
        const [nh, nw] = c.target_hw;
        const out = resizeArea(f.lbl, nh, nw);
        expect(countDiff(out.data as Uint8Array, f.lbl_area.data as Uint8Array)).toBe(0);
      });

      it('INTER_NEAREST of the label map is bit-exact', async () => {
        const f = await load();
        const [nh, nw] = c.target_hw;
        const out = resizeNearest(f.lbl, nh, nw);
        expect(out.shape).toEqual([nh, nw]);
        expect(countDiff(out.data as Uint8Array, f.nearest.data as Uint8Array)).toBe(0);
      });

      it('ToTensor + antialiased bilinear crops (64, 224) within 1e-6', async () => {
        const f = await load();
        const t = toTensor(crop(f.img, c.crop_box));
        const c64 = resizeAntialiasBilinear(t, 64, 64);
        const c224 = resizeAntialiasBilinear(t, 224, 224);
        expect(c64.shape).toEqual(f.crop64.shape);
        expect(c224.shape).toEqual(f.crop224.shape);
        expect(maxErr(c64.data as Float32Array, f.crop64.data as Float32Array)).toBeLessThanOrEqual(1e-6);
        expect(maxErr(c224.data as Float32Array, f.crop224.data as Float32Array)).toBeLessThanOrEqual(1e-6);
      });

      it('bilinear post-processing within 1e-6 and the mask bit-exact', async () => {
        const f = await load();
        const [h, w] = f.img.shape;
        const [nh, nw] = c.target_hw;
        const up = resizeBilinearPlanes(f.logits256.data as Float32Array, 1, nh, nw, h, w, {
          rowStride: 256,
        });
        const rows = Array.from(f.post_rows.data as BigInt64Array, Number);
        const got = new Float32Array(rows.length * w);
        const mask = new Uint8Array(rows.length * w);
        rows.forEach((r, i) => {
          got.set(up.subarray(r * w, (r + 1) * w), i * w);
          for (let x = 0; x < w; x++) {
            const v = up[r * w + x];
            mask[i * w + x] = Math.fround(1 / Math.fround(1 + Math.fround(Math.exp(-v)))) > 0.5 ? 1 : 0;
          }
        });
        expect(maxErr(got, f.post.data as Float32Array)).toBeLessThanOrEqual(1e-6);
        expect(countDiff(mask, f.post_mask.data as Uint8Array)).toBe(0);
      });
    });
  }
});

describe('resize edge cases', () => {
  const grey = (h: number, w: number, seed = 7) => {
    const a = ndarray('uint8', [h, w]);
    let s = seed;
    for (let i = 0; i < a.data.length; i++) a.data[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    return a;
  };

  it('same size is a copy for every resizer', () => {
    const g = grey(5, 7);
    expect(Array.from(resizeArea(g, 5, 7).data)).toEqual(Array.from(g.data));
    expect(Array.from(resizeNearest(g, 5, 7).data)).toEqual(Array.from(g.data));
    const t = toTensor(g);
    expect(Array.from(resizeAntialiasBilinear(t, 5, 7).data)).toEqual(Array.from(t.data));
    const f = ndarray(
      'float32',
      [5, 7],
      Float32Array.from(g.data, (v) => v / 7),
    );
    expect(Array.from(resizeBilinear(f, 5, 7).data)).toEqual(Array.from(f.data));
  });

  it('1x1 inputs give constant outputs', () => {
    const one = ndarray('uint8', [1, 1, 3], [10, 200, 255]);
    const a = resizeArea(one, 4, 3);
    expect(a.shape).toEqual([4, 3, 3]);
    for (let i = 0; i < 12; i++)
      expect([a.data[3 * i], a.data[3 * i + 1], a.data[3 * i + 2]]).toEqual([10, 200, 255]);
    const n = resizeNearest(one, 2, 2);
    expect(Array.from(n.data)).toEqual([10, 200, 255, 10, 200, 255, 10, 200, 255, 10, 200, 255]);
    const t = resizeAntialiasBilinear(toTensor(one), 3, 3);
    expect(Array.from(t.data.subarray(0, 9))).toEqual(new Array(9).fill(Math.fround(10 / 255)));
    const b = resizeBilinear(ndarray('float32', [1, 1], [2.5]), 3, 2);
    expect(Array.from(b.data)).toEqual(new Array(6).fill(2.5));
    // and down to 1x1
    expect(Array.from(resizeArea(ndarray('uint8', [2, 2], [1, 2, 3, 5]), 1, 1).data)).toEqual([3]); // (11+2)>>2
  });

  it('the 2x fast path rounds half up; other integer factors round half to even', () => {
    // 2x2 block sum 6 -> (6+2)>>2 = 2 (1.5 rounds up)
    expect(Array.from(resizeArea(ndarray('uint8', [2, 2], [1, 2, 1, 2]), 1, 1).data)).toEqual([2]);
    // 2x1 block (scale 2 x 1): sum 3 * 0.5 = 1.5 -> 2 (even); sum 5 * 0.5 = 2.5 -> 2
    expect(Array.from(resizeArea(ndarray('uint8', [1, 4], [1, 2, 2, 3]), 1, 2).data)).toEqual([2, 2]);
  });

  it('resizeLongestSide refuses a side that rounds to 0', () => {
    expect(() => longestSideSize(1, 513)).toThrow(InputError);
    expect(() => resizeLongestSide(ndarray('uint8', [1, 600]))).toThrow(/would be 0 x 256/);
    expect(longestSideSize(1, 512)).toEqual({ scale: 0.5, newH: 1, newW: 256 });
  });

  it('bad shapes, dtypes and sizes are InputErrors', () => {
    expect(() => resizeArea(ndarray('float32', [4, 4]), 2, 2)).toThrow(InputError);
    expect(() => resizeArea(ndarray('uint8', [4, 4, 2]), 2, 2)).toThrow(/channels/);
    expect(() => resizeArea(ndarray('uint8', [4]), 2, 2)).toThrow(/\(H,W\)/);
    expect(() => resizeArea(ndarray('uint8', [0, 4]), 2, 2)).toThrow(/empty/);
    expect(() => resizeArea(ndarray('uint8', [4, 4]), 0, 2)).toThrow(/positive/);
    expect(() => resizeArea(ndarray('uint8', [4, 4]), 2.5, 2)).toThrow(InputError);
    expect(() => resizeNearest(ndarray('uint8', [4, 4]), -1, 2)).toThrow(InputError);
    expect(() => resizeAntialiasBilinear(ndarray('float32', [3, 0, 4]), 2, 2)).toThrow(/greater than 0/);
    expect(() => resizeAntialiasBilinear(ndarray('uint8', [3, 4, 4]), 2, 2)).toThrow(/float32/);
    expect(() => resizeBilinear(ndarray('float32', [3, 4, 4]), 2, 2)).toThrow(/\(N,C,H,W\)/);
    expect(() => toTensorU8(new Uint8Array(16), 4, 4, 1, [0, 0, 5, 4])).toThrow(/outside/);
  });

  it('nearest keeps dtype (int64 labels)', () => {
    const a = ndarray('int64', [2, 2], [1n, 2n, 3n, 4n]);
    const r = resizeNearest(a, 4, 4);
    expect(r.dtype).toBe('int64');
    expect(Array.from(r.data as BigInt64Array, Number)).toEqual([
      1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4,
    ]);
  });
});
