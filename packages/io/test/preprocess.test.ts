import { readFileSync } from 'node:fs';
import { InputError } from '@mcp-medsam/core';
import { describe, expect, it } from 'vitest';
import { sharedPath } from '../../../test-utils/shared.js';
import { countDiff, maxAbsDiff } from '../../../test-utils/reference.js';
import {
  bboxOfMask,
  cropContent,
  ndarray,
  padBottomRight,
  postprocessLogits,
  preprocessImage,
  readNpzFile,
  resizeLongestSide,
  scaleBox,
  sigmoidAboveHalf,
  type Box,
  type NdArray,
} from '../src/index.js';

const num = (a: NdArray) => Array.from(a.data as ArrayLike<number | bigint>, Number);

const maxAbs = maxAbsDiff;

describe('forward-a inputs (the inference pre-processing)', () => {
  for (const name of ['ct', 'endo']) {
    it(`forward-a-${name}: image bit-exact, box256 exact, crop64 within 1e-6`, async () => {
      const f = await readNpzFile(sharedPath(`fixtures/model/forward-a-${name}.npz`));
      const [H, W] = num(f.orig_hw);
      const pre = preprocessImage(f.img_3c);
      expect([pre.newH, pre.newW]).toEqual(num(f.new_hw));
      expect([pre.h, pre.w]).toEqual([H, W]);
      expect(countDiff(pre.image, f.image.data as Float32Array)).toBe(0);
      const box = num(f.box_orig);
      expect(scaleBox(box, H, W)).toEqual(num(f.box256));
      const crop = cropContent(f.img_3c, box, 64);
      expect(crop.shape).toEqual([3, 64, 64]);
      expect(crop.empty).toBe(false);
      expect(maxAbs(crop.data, f.crop64.data as Float32Array)).toBeLessThanOrEqual(1e-6);
    });
  }
});

describe('2D end-to-end case', () => {
  const stem = '2D_XRay_cxr-pneumonia-day0';
  const load = async () => ({
    input: await readNpzFile(sharedPath(`fixtures/e2e/input/${stem}.npz`)),
    lg: await readNpzFile(sharedPath(`fixtures/e2e/expected/${stem}.logits.npz`)),
    segs: (await readNpzFile(sharedPath(`fixtures/e2e/expected/${stem}.npz`))).segs,
    trace: JSON.parse(readFileSync(sharedPath(`fixtures/e2e/expected/${stem}.trace.json`), 'utf8')) as {
      calls: { fg_px: number; 'n_px_abs_logit_lt_1e-4': number }[];
    },
  });

  it('box256 and crop64 of every box', async () => {
    const { input, lg } = await load();
    const [H, W] = input.imgs.shape;
    const boxes = num(input.boxes);
    const pre = preprocessImage(input.imgs);
    expect([pre.newH, pre.newW]).toEqual(num(lg.new_hw));
    const n = input.boxes.shape[0];
    const crops64 = lg.crop64.data as Float32Array;
    for (let i = 0; i < n; i++) {
      const box = boxes.slice(4 * i, 4 * i + 4);
      expect(num(lg.crop_box).slice(4 * i, 4 * i + 4)).toEqual(box);
      expect(scaleBox(box, H, W, { truncate: true })).toEqual(num(lg.box256).slice(4 * i, 4 * i + 4));
      const crop = cropContent(input.imgs, box, 64);
      expect(maxAbs(crop.data, crops64.subarray(i * 3 * 64 * 64, (i + 1) * 3 * 64 * 64))).toBeLessThanOrEqual(
        1e-6,
      );
    }
  });

  it('post-processing rebuilds segs except at near-zero logits', async () => {
    const { input, lg, segs, trace } = await load();
    const [H, W] = input.imgs.shape;
    const [newH, newW] = num(lg.new_hw);
    const logits = lg.logits.data as Float32Array;
    const n = lg.logits.shape[0];
    const out = new Uint8Array(H * W);
    const nearZero = new Uint8Array(H * W);
    let nNear = 0;
    const perBox: number[] = [];
    for (let i = 0; i < n; i++) {
      const { mask, logits: up } = postprocessLogits(
        logits.subarray(i * 65536, (i + 1) * 65536),
        newH,
        newW,
        H,
        W,
        {
          keepLogits: true,
        },
      );
      let fg = 0;
      let near = 0;
      for (let p = 0; p < H * W; p++) {
        if (mask[p]) {
          out[p] = (i + 1) % 256;
          fg++;
        }
        if (Math.abs(up![p]) < 1.0001e-4) {
          near++;
          nearZero[p] = 1;
        }
      }
      // Our upsampled logits are within ~5e-7 of torch's, so a pixel sitting right at |logit| = 1e-4
      // can fall on either side of the count (box 1 has one such pixel).
      expect(Math.abs(near - trace.calls[i]['n_px_abs_logit_lt_1e-4'])).toBeLessThanOrEqual(1);
      expect(Math.abs(fg - trace.calls[i].fg_px)).toBeLessThanOrEqual(near);
      perBox.push(fg - trace.calls[i].fg_px);
      nNear += near;
    }
    expect(Math.abs(nNear - 41)).toBeLessThanOrEqual(3); // README: 41 = 12 + 21 + 8
    expect(perBox).toEqual([0, 0, 0]); // every box's mask has exactly the original's pixel count
    const expected = segs.data as Uint8Array;
    let mismatched = 0;
    for (let p = 0; p < H * W; p++) {
      if (out[p] !== expected[p]) {
        mismatched++;
        expect(nearZero[p]).toBe(1);
      }
    }
    expect(mismatched).toBeLessThanOrEqual(41);
    expect(mismatched).toBe(0); // in fact none flips
  });
});

/** The e2e stand-in network (fixtures README, e2e/stub-model). */
function stubLogits(image: Float32Array, box: readonly number[]): Float32Array {
  const [x0, y0, x1, y1] = box.map((v) => Math.fround(v));
  const out = new Float32Array(65536).fill(-1);
  if (x1 - x0 < 24 || y1 - y0 < 24) return out;
  const rx0 = x0 + 0.2 * (x1 - x0);
  const rx1 = x1 - 0.2 * (x1 - x0);
  const ry0 = y0 + 0.2 * (y1 - y0);
  const ry1 = y1 - 0.2 * (y1 - y0);
  for (let i = 0; i < 256; i++)
    for (let j = 0; j < 256; j++)
      if (rx0 <= j + 0.5 && j + 0.5 <= rx1 && ry0 <= i + 0.5 && i + 0.5 <= ry1)
        out[i * 256 + j] = image[i * 256 + j] - 0.45;
  return out;
}

interface StubCall {
  box: number;
  z: number | null;
  box256: number[];
  crop_box: number[];
  fg_px: number;
}

describe('e2e with the stand-in network (whole pre/post-processing chain)', () => {
  it('2D: segs exact', async () => {
    const stem = '2D_XRay_cxr-pneumonia-day0';
    const input = await readNpzFile(sharedPath(`fixtures/e2e/input/${stem}.npz`));
    const expected = (await readNpzFile(sharedPath(`fixtures/e2e/stub-model/${stem}.npz`))).segs;
    const trace = JSON.parse(
      readFileSync(sharedPath(`fixtures/e2e/stub-model/${stem}.trace.json`), 'utf8'),
    ) as {
      calls: StubCall[];
    };
    const [H, W] = input.imgs.shape;
    const pre = preprocessImage(input.imgs);
    const boxes = num(input.boxes);
    const segs = new Uint8Array(H * W);
    for (let i = 0; i < input.boxes.shape[0]; i++) {
      const box = boxes.slice(4 * i, 4 * i + 4);
      const box256 = scaleBox(box, H, W);
      expect(box256).toEqual(trace.calls[i].box256);
      const { mask } = postprocessLogits(stubLogits(pre.image, box256), pre.newH, pre.newW, H, W);
      let fg = 0;
      for (let p = 0; p < H * W; p++) {
        if (mask[p]) {
          segs[p] = (i + 1) % 256;
          fg++;
        }
      }
      expect(fg).toBe(trace.calls[i].fg_px);
    }
    expect(countDiff(segs, expected.data as Uint8Array)).toBe(0);
  });

  it('3D: propagation boxes, crop boxes and segs exact', async () => {
    const stem = '3D_CT_lesion-000015';
    const input = await readNpzFile(sharedPath(`fixtures/e2e/input/${stem}.npz`));
    const expected = (await readNpzFile(sharedPath(`fixtures/e2e/stub-model/${stem}.npz`))).segs;
    const trace = JSON.parse(
      readFileSync(sharedPath(`fixtures/e2e/stub-model/${stem}.trace.json`), 'utf8'),
    ) as {
      calls: StubCall[];
    };
    const [D, H, W] = input.imgs.shape;
    const HW = H * W;
    const imgs = input.imgs.data as Uint8Array;
    const boxes = num(input.boxes);
    const segs = new Uint8Array(D * HW);
    const calls: StubCall[] = [];
    for (let b = 0; b < input.boxes.shape[0]; b++) {
      const idx = b + 1;
      const [x0, y0, z0, x1, y1, z1] = boxes.slice(6 * b, 6 * b + 6);
      const box2d: Box = [x0, y0, x1, y1];
      const zm = Math.trunc((z1 - z0) / 2 + z0);
      const tmp = new Uint8Array(D * HW);
      const step = (z: number, nb: number, truncateFallback: boolean) => {
        const pre = preprocessImage(ndarray('uint8', [H, W], imgs.subarray(z * HW, (z + 1) * HW)));
        let cropBox: Box = box2d;
        let box256: Box = scaleBox(box2d, H, W, { truncate: true });
        const prev = nb >= 0 && nb < D ? tmp.subarray(nb * HW, (nb + 1) * HW) : null;
        const prevBox = z !== zm && prev ? bboxOfMask(prev, H, W, 3) : null;
        if (z !== zm && prevBox) {
          cropBox = prevBox;
          const small = padBottomRight(resizeLongestSide(ndarray('uint8', [H, W], prev!)));
          box256 = bboxOfMask(small.data as Uint8Array, 256, 256, { margin: 3, clampTo: 256 })!;
        } else if (z !== zm && !truncateFallback) {
          box256 = scaleBox(box2d, H, W, { truncate: false });
        }
        const { mask } = postprocessLogits(stubLogits(pre.image, box256), pre.newH, pre.newW, H, W);
        let fg = 0;
        for (let p = 0; p < HW; p++) {
          if (mask[p]) {
            tmp[z * HW + p] = idx;
            fg++;
          }
        }
        calls.push({ box: idx, z, box256, crop_box: cropBox, fg_px: fg });
      };
      for (let z = zm; z < z1; z++) step(z, z - 1, true);
      for (let z = zm - 1; z > z0; z--) step(z, z + 1, false);
      for (let p = 0; p < D * HW; p++) if (tmp[p] > 0) segs[p] = idx;
    }
    expect(calls.length).toBe(trace.calls.length);
    calls.forEach((c, i) => {
      const t = trace.calls[i];
      expect([c.box, c.z, c.crop_box, c.fg_px]).toEqual([t.box, t.z, t.crop_box, t.fg_px]);
      for (let k = 0; k < 4; k++) expect(c.box256[k]).toBeCloseTo(t.box256[k], 10);
    });
    expect(countDiff(segs, expected.data as Uint8Array)).toBe(0);
  });
});

describe('pre/post-processing helpers', () => {
  it('bboxOfMask: min/max, margin, clamps, empty', () => {
    const m = new Uint8Array(6 * 5);
    expect(bboxOfMask(m, 6, 5)).toBeNull();
    m[1 * 5 + 2] = 1;
    m[4 * 5 + 4] = 7;
    expect(bboxOfMask(m, 6, 5)).toEqual([2, 1, 4, 4]);
    expect(bboxOfMask(m, 6, 5, 3)).toEqual([0, 0, 5, 6]);
    expect(bboxOfMask(m, 6, 5, { margin: 1, clampTo: 4 })).toEqual([1, 0, 4, 4]);
    expect(bboxOfMask(m, 6, 5, 1, { width: 5, height: 5 })).toEqual([1, 0, 5, 5]);
  });

  it('scaleBox truncates toward zero or keeps the float', () => {
    expect(scaleBox([105, 84, 129, 119], 200, 232)).toEqual([115, 92, 142, 131]);
    const f = scaleBox([105, 84, 129, 119], 200, 232, { truncate: false });
    expect(f[3]).toBe(131.3103448275862); // 119 * (256 / 232), as the trace records it
    expect(() => scaleBox([1, 2, 3], 10, 10)).toThrow(InputError);
    expect(() => scaleBox([1, 2, 3, NaN], 10, 10)).toThrow(/finite/);
  });

  it('cropContent: empty box gives flagged zeros; bad boxes throw; python-style upper clipping', () => {
    const img = ndarray(
      'uint8',
      [4, 5, 3],
      Uint8Array.from({ length: 60 }, (_, i) => i * 4),
    );
    const e = cropContent(img, [2, 1, 2, 3], 64);
    expect(e.empty).toBe(true);
    expect(e.data.every((v) => v === 0)).toBe(true);
    const [a, b] = cropContent(img, [0, 0, 50, 50], [8, 16]);
    expect(a.shape).toEqual([3, 8, 8]);
    expect(b.shape).toEqual([3, 16, 16]);
    expect(Array.from(a.data)).toEqual(Array.from(cropContent(img, [0, 0, 5, 4], 8).data));
    expect(() => cropContent(img, [-1, 0, 2, 2], 8)).toThrow(/non-negative integers/);
    expect(() => cropContent(img, [0.5, 0, 2, 2], 8)).toThrow(InputError);
    expect(() => cropContent(img, [0, 0, 2, 2], 0)).toThrow(/crop size/);
  });

  it('preprocessImage: grey equals the 3-channel repeat; constant image gives zeros; bad input throws', () => {
    const g = ndarray(
      'uint8',
      [30, 17],
      Uint8Array.from({ length: 510 }, (_, i) => (i * 37) % 251),
    );
    const rgb = ndarray(
      'uint8',
      [30, 17, 3],
      Uint8Array.from({ length: 1530 }, (_, i) => g.data[Math.floor(i / 3)]),
    );
    const a = preprocessImage(g);
    const b = preprocessImage(rgb);
    expect([a.newH, a.newW]).toEqual([256, 145]);
    expect(countDiff(a.image, b.image)).toBe(0);
    const flat = preprocessImage(
      ndarray('uint8', [8, 8, 3]).data.fill(9) && ndarray('uint8', [8, 8, 3], new Uint8Array(192).fill(9)),
    );
    expect(flat.image.every((v) => v === 0)).toBe(true);
    expect(() => preprocessImage(ndarray('float32', [8, 8, 3]))).toThrow(InputError);
    expect(() => preprocessImage(ndarray('uint8', [8, 8, 4]))).toThrow(/channels/);
    expect(() => preprocessImage(ndarray('uint8', [1, 600, 3]))).toThrow(/would be 0 x 256/);
  });

  it('postprocessLogits: float32 sigmoid threshold, bad sizes throw', () => {
    expect(sigmoidAboveHalf(0)).toBe(false);
    expect(sigmoidAboveHalf(1e-9)).toBe(false); // rounds to exactly 0.5 in float32
    expect(sigmoidAboveHalf(1e-6)).toBe(true);
    expect(sigmoidAboveHalf(-1e-6)).toBe(false);
    expect(sigmoidAboveHalf(Number.NaN)).toBe(false);
    const lr = new Float32Array(65536).fill(-1);
    lr[0] = 1e-9;
    lr[1] = 2;
    const { mask } = postprocessLogits(lr, 1, 2, 1, 2);
    expect(Array.from(mask)).toEqual([0, 1]);
    expect(() => postprocessLogits(new Float32Array(10), 1, 1, 1, 1)).toThrow(InputError);
    expect(() => postprocessLogits(lr, 0, 1, 1, 1)).toThrow(/content size/);
    expect(() => postprocessLogits(lr, 257, 1, 1, 1)).toThrow(/content size/);
  });

  it('padBottomRight keeps dtype and puts the content top-left', () => {
    const p = padBottomRight(ndarray('uint8', [2, 3], [1, 2, 3, 4, 5, 6]), 4);
    expect(p.shape).toEqual([4, 4]);
    expect(Array.from(p.data)).toEqual([1, 2, 3, 0, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(() => padBottomRight(ndarray('uint8', [5, 3]), 4)).toThrow(/does not fit/);
  });
});
