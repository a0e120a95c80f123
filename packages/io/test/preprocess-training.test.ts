import { readFileSync } from 'node:fs';
import { InputError, Rng } from '@mcp-medsam/core';
import { describe, expect, it } from 'vitest';
import { sharedPath } from '../../../test-utils/shared.js';
import { countDiff, maxAbsDiff } from '../../../test-utils/reference.js';
import {
  buildTrainingSample,
  modalityToken,
  ndarray,
  readNpzFile,
  replayChoices,
  ResampleError,
  type RecordedChoices,
  type SampleChoices,
} from '../src/index.js';

interface RecordedSample {
  slice?: number;
  label: number;
  crop_box_orig: number[];
  flip_h: boolean;
  flip_v: boolean;
  box256: number[];
  category_text: string;
  category_idx: number;
  orig_hw: number[];
  file: string;
}

const stepA = JSON.parse(readFileSync(sharedPath('fixtures/train/step-a.json'), 'utf8')) as {
  samples: RecordedSample[];
};

/** Where the sources of the two step-a samples are in shared/data. */
const SOURCES: Record<string, string> = {
  'CT_Lesion_000001_02_01_008-023.npz':
    'data/raw/medsam2_recist-ct-lesion/CT_Lesion_000001_02_01_008-023.npz',
  'Endoscopy_kvasir_cju1fjsb4sipq09931lvd8e41.npz':
    'data/npz/2D_Endoscopy_kvasir-seg_medsam-fork_cju1fjsb4sipq09931lvd8e41.npz',
};

const maxAbs = maxAbsDiff;

describe('step-a training samples, replayed from the recorded choices', () => {
  const batch = readNpzFile(sharedPath('fixtures/train/step-a.npz'));
  stepA.samples.forEach((rec, k) => {
    it(`sample ${k}: ${rec.file}`, async () => {
      const b = await batch;
      const src = await readNpzFile(sharedPath(SOURCES[rec.file]));
      const arrays = { imgs: src.imgs, gts: src.gts };
      const flips = { horizontal: rec.flip_h, vertical: rec.flip_v };
      const base: RecordedChoices = {
        slice: rec.slice,
        label: rec.label,
        flips,
        cropMargins: [0, 0, 0, 0],
        boxMargins: [0, 0, 0, 0],
      };
      // The json records the boxes, not the margins: derive them from the tight boxes.
      const tight = buildTrainingSample(arrays, rec.file, replayChoices(base), { crop224: false }).meta;
      const [cx0, cy0, cx1, cy1] = rec.crop_box_orig;
      const [bx0, by0, bx1, by1] = rec.box256;
      const t = tight.tightCropBox;
      const u = tight.tightBox;
      const replay: RecordedChoices = {
        ...base,
        cropMargins: [t[0] - cx0, cx1 - t[2], t[1] - cy0, cy1 - t[3]],
        boxMargins: [u[0] - bx0, bx1 - u[2], u[1] - by0, by1 - u[3]],
      };
      for (const m of [...replay.cropMargins, ...replay.boxMargins]) expect(m >= 0 && m <= 5).toBe(true);

      const s = buildTrainingSample(arrays, rec.file, replayChoices(replay));
      expect(s.meta.cropBox).toEqual(rec.crop_box_orig);
      expect(s.meta.box).toEqual(rec.box256);
      expect(s.meta.origHW).toEqual(rec.orig_hw);
      expect(s.meta.slice).toBe(rec.slice ?? null);
      expect(s.text).toBe(rec.category_text);
      expect(s.categoryIdx).toBe(rec.category_idx);
      expect(Number((b.category_idx.data as BigInt64Array)[k])).toBe(rec.category_idx);

      const N = 3 * 256 * 256;
      expect(countDiff(s.image, (b.image.data as Float32Array).subarray(k * N, (k + 1) * N))).toBe(0);
      expect(countDiff(s.gt2D, (b.gt2D.data as Float32Array).subarray(k * 65536, (k + 1) * 65536))).toBe(0);
      expect(Array.from(s.box)).toEqual(
        Array.from((b.boxes.data as Float32Array).subarray(4 * k, 4 * k + 4)),
      );
      const C = 3 * 64 * 64;
      expect(
        maxAbs(s.crop64, (b.crops.data as Float32Array).subarray(k * C, (k + 1) * C)),
      ).toBeLessThanOrEqual(1e-6);
      expect(s.crop224?.length).toBe(3 * 224 * 224);
      expect(s.meta.cropEmpty).toBe(false);
    });
  });
});

describe('buildTrainingSample', () => {
  /** A small 2D case: two labels on a 40 x 60 RGB image. */
  function case2d() {
    const H = 40;
    const W = 60;
    const imgs = ndarray(
      'uint8',
      [H, W, 3],
      Uint8Array.from({ length: H * W * 3 }, (_, i) => (i * 7) % 256),
    );
    const gts = ndarray('uint8', [H, W]);
    for (let y = 5; y < 15; y++) for (let x = 10; x < 30; x++) gts.data[y * W + x] = 1;
    for (let y = 20; y < 35; y++) for (let x = 40; x < 55; x++) gts.data[y * W + x] = 3;
    return { imgs, gts };
  }

  it('is deterministic for a seed and draws valid choices', () => {
    const a = buildTrainingSample(case2d(), '2D_Dermoscopy_x.npz', new Rng(5));
    const b = buildTrainingSample(case2d(), '2D_Dermoscopy_x.npz', new Rng(5));
    expect(countDiff(a.image, b.image)).toBe(0);
    expect(a.meta).toEqual(b.meta);
    expect([1, 3]).toContain(a.meta.label);
    expect(a.text).toBe('Dermoscopy Image');
    expect(a.categoryIdx).toBe(5);
    expect(a.gt2D.length).toBe(65536);
    expect(a.crop64.length).toBe(3 * 64 * 64);
  });

  it('calls the choices in the original order', () => {
    const calls: string[] = [];
    const ch: SampleChoices = {
      slice: (d) => (calls.push(`slice ${d}`), 1),
      label: (l) => (calls.push(`label ${l.join(',')}`), l[0]),
      cropMargin: (s) => (calls.push(`crop ${s}`), 0),
      flip: (a) => (calls.push(`flip ${a}`), false),
      boxMargin: (s) => (calls.push(`box ${s}`), 0),
    };
    const imgs = ndarray('uint8', [3, 20, 20]);
    const gts = ndarray('uint16', [3, 20, 20]);
    gts.data[400 + 5 * 20 + 5] = 7;
    gts.data[400 + 6 * 20 + 9] = 2;
    const s = buildTrainingSample({ imgs, gts }, '3D_MR_case.npz', ch);
    expect(calls).toEqual([
      'slice 3',
      'label 2,7',
      'crop x0',
      'crop x1',
      'crop y0',
      'crop y1',
      'flip horizontal',
      'flip vertical',
      'box x0',
      'box x1',
      'box y0',
      'box y1',
    ]);
    expect(s.meta.tightCropBox).toEqual([9, 6, 9, 6]);
    expect(s.meta.cropEmpty).toBe(true); // margin 0: x1 == x0, the original's zero crops
    expect(s.crop64.every((v) => v === 0)).toBe(true);
    expect(s.text).toBe('MR Image');
  });

  it('throws ResampleError where the original resamples', () => {
    const { imgs, gts } = case2d();
    const rng = () => new Rng(1);
    const full = ndarray('uint8', gts.shape, new Uint8Array(gts.data.length).fill(2));
    expect(() => buildTrainingSample({ imgs, gts: full }, 'CT_a.npz', rng())).toThrow(ResampleError);
    try {
      buildTrainingSample({ imgs, gts: ndarray('uint8', gts.shape) }, 'CT_a.npz', rng());
    } catch (e) {
      expect(e).toBeInstanceOf(ResampleError);
      expect((e as ResampleError).reason).toBe('no-foreground');
    }
    // A one-pixel object that INTER_NEAREST drops (900 -> 256 columns).
    const big = ndarray('uint8', [10, 900]);
    big.data[5 * 900 + 1] = 1;
    expect(() =>
      buildTrainingSample({ imgs: ndarray('uint8', [10, 900, 3]), gts: big }, 'US_a.npz', rng()),
    ).toThrow(/vanishes/);
    // MR_totalseg: axes sorted by size, then a middle dim <= 100 is refused.
    const v = ndarray('uint8', [90, 60, 200]); // sorted: (60, 90, 200)
    expect(() => buildTrainingSample({ imgs: v, gts: v }, 'MR_totalseg_s0001.npz', rng())).toThrow(
      /middle dimension 90/,
    );
  });

  it('MR_totalseg volumes are transposed so the smallest axis is the slice axis', () => {
    const D = 130;
    const H = 110;
    const W = 20; // smallest: becomes the slice axis -> (20, 110, 130)
    const imgs = ndarray('uint8', [D, H, W]);
    const gts = ndarray('uint8', [D, H, W]);
    for (let z = 0; z < D; z++) for (let y = 0; y < H; y++) gts.data[(z * H + y) * W + 3] = y > 50 ? 1 : 0;
    const s = buildTrainingSample(
      { imgs, gts },
      '3D_MR_totalseg_x.npz',
      replayChoices({
        slice: 3,
        label: 1,
        flips: { horizontal: false, vertical: false },
        cropMargins: [0, 0, 0, 0],
        boxMargins: [0, 0, 0, 0],
      }),
    );
    expect(s.meta.origHW).toEqual([110, 130]);
    expect(s.meta.tightCropBox).toEqual([0, 51, 129, 109]);
  });

  it('options: flipCrops mirrors the crops, canonicalText renames', () => {
    const rec = (h: boolean): RecordedChoices => ({
      label: 1,
      flips: { horizontal: h, vertical: false },
      cropMargins: [1, 2, 3, 4],
      boxMargins: [0, 0, 0, 0],
    });
    const a = buildTrainingSample(case2d(), '2D_Microscope_a.npz', replayChoices(rec(true)));
    const b = buildTrainingSample(case2d(), '2D_Microscope_a.npz', replayChoices(rec(true)), {
      flipCrops: true,
      canonicalText: true,
    });
    expect(a.text).toBe('Microscope Image');
    expect(b.text).toBe('Microscopy Image');
    expect(a.categoryIdx).toBe(10);
    // The flipped crop's rows are close to the reversed unflipped rows (resampling is not exactly symmetric).
    let m = 0;
    for (let r = 0; r < 3 * 64; r++)
      for (let x = 0; x < 64; x++)
        m = Math.max(m, Math.abs(b.crop64[r * 64 + x] - a.crop64[r * 64 + 63 - x]));
    expect(m).toBeLessThan(1e-5);
    expect(countDiff(a.crop64, b.crop64)).toBeGreaterThan(0);
  });

  it('bad input is an InputError', () => {
    const { imgs, gts } = case2d();
    expect(() => buildTrainingSample({ imgs, gts }, 'Foo_x.npz', new Rng(1))).toThrow(
      /unknown modality 'Foo'/,
    );
    expect(() =>
      buildTrainingSample({ imgs: ndarray('float32', [40, 60, 3]), gts }, 'CT_x.npz', new Rng(1)),
    ).toThrow(InputError);
    expect(() =>
      buildTrainingSample({ imgs: ndarray('uint8', [40, 61, 3]), gts }, 'CT_x.npz', new Rng(1)),
    ).toThrow(/does not match/);
    const bad = replayChoices({
      label: 2,
      flips: { horizontal: false, vertical: false },
      cropMargins: [0, 0, 0, 0],
      boxMargins: [0, 0, 0, 0],
    });
    expect(() => buildTrainingSample({ imgs, gts }, 'CT_x.npz', bad)).toThrow(/label 2 is not one of/);
    const wide = replayChoices({
      label: 1,
      flips: { horizontal: false, vertical: false },
      cropMargins: [6, 0, 0, 0],
      boxMargins: [0, 0, 0, 0],
    });
    expect(() => buildTrainingSample({ imgs, gts }, 'CT_x.npz', wide)).toThrow(/margin 6/);
  });

  it('modalityToken', () => {
    expect(modalityToken('/a/b/3D_CT_x.npz')).toBe('CT');
    expect(modalityToken('2D_Microscope_x.npz')).toBe('Microscope');
    expect(modalityToken('XRay_chest_1.npz')).toBe('XRay');
  });
});
