/** The challenge npz layout: modality from names, case validation, boxes from labels, segs. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '@mcp-medsam/core';
import {
  type NdArray,
  boxesFromLabels,
  labelIds,
  modalityFromFileName,
  ndarray,
  readChallengeCase,
  readNpzFile,
  validateChallengeCase,
  writeNpzFile,
  writeSegs,
} from '../src/index.js';
import { sharedPath } from '../../../test-utils/shared.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'io-challenge-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('modalityFromFileName', () => {
  it('reads token 0, or token 1 after 2D_/3D_, with aliases', () => {
    expect(modalityFromFileName('CT_Abd_0001.npz')).toEqual({
      modality: 'CT',
      categoryIdx: 0,
      dims: undefined,
    });
    expect(modalityFromFileName('/x/y/3D_MR_brats.npz')).toEqual({ modality: 'MR', categoryIdx: 1, dims: 3 });
    expect(modalityFromFileName('2D_X-Ray_a').modality).toBe('XRay');
    expect(modalityFromFileName('XRay_a').categoryIdx).toBe(3);
    expect(modalityFromFileName('2D_Mammo_case').modality).toBe('Mammography');
    expect(modalityFromFileName('2D_Microscope_cell.npz')).toEqual({
      modality: 'Microscopy',
      categoryIdx: 10,
      dims: 2,
    });
    expect(modalityFromFileName('2DBox_Mammography_demo').modality).toBe('Mammography'); // token 0 "2DBox" is not a prefix
  });
  it('throws an InputError naming the file for unknown modalities', () => {
    expect(() => modalityFromFileName('2D_Foot_x.npz')).toThrow(InputError);
    expect(() => modalityFromFileName('2D_Foot_x.npz')).toThrow(/2D_Foot_x\.npz: unknown modality 'Foot'/);
  });
});

describe('readChallengeCase on shared files', () => {
  it('2D and 3D converted cases', async () => {
    const c2 = await readChallengeCase(sharedPath('data/npz/2D_Microscopy_wbc_zxaoyou_Dataset-1-001.npz'));
    expect(c2).toMatchObject({ dims: 2, modality: 'Microscopy', categoryIdx: 10 });
    expect(c2.imgs.shape).toEqual([120, 120, 3]);
    expect(c2.boxes!.shape).toEqual([2, 4]);
    expect(labelIds(c2.gts!)).toEqual([1, 2]);
    const c3 = await readChallengeCase(
      sharedPath('data/npz/3D_MR_brats2013-mr_deepmedic_brats_2013_pat0001_1.npz'),
    );
    expect(c3).toMatchObject({ dims: 3, modality: 'MR', categoryIdx: 1, spacing: [1, 1, 1] });
    expect(c3.boxes!.shape).toEqual([4, 6]);
  });
  it('the challenge demo input (no gts) and a MedSAM2 file (no boxes)', async () => {
    const d = await readChallengeCase(
      sharedPath('data/raw/cvpr24-demo_medficientsam/2DBox_Mammography_demo.npz'),
    );
    expect(d.dims).toBe(2);
    expect(d.modality).toBe('Mammography');
    expect(d.imgs.shape).toEqual([2604, 1726, 3]);
    expect(d.gts).toBeUndefined();
    expect(d.boxes!.shape).toEqual([4, 4]);
    const m = await readChallengeCase(
      sharedPath('data/raw/medsam2_recist-ct-lesion/CT_Lesion_000001_02_01_008-023.npz'),
    );
    expect(m).toMatchObject({ dims: 3, modality: 'CT' }); // no prefix: (16,512,512) is taken as (D,H,W)
    expect(m.spacing![2]).toBe(5);
    expect(m.boxes).toBeUndefined();
  }, 30_000);
});

describe('validateChallengeCase errors', () => {
  const img2 = ndarray('uint8', [4, 5, 3]);
  const box = (v: number[], k = 4) => ndarray('int64', [v.length / k, k], v);
  const bad = (arrays: Record<string, NdArray>, dims: 2 | 3, re: RegExp) => {
    expect(() => validateChallengeCase(arrays, dims, 'case.npz')).toThrow(InputError);
    expect(() => validateChallengeCase(arrays, dims, 'case.npz')).toThrow(re);
  };
  it('ndim, dtype and value range of imgs', () => {
    bad({}, 2, /no 'imgs'/);
    bad({ imgs: ndarray('uint8', [4, 5, 2]) }, 2, /must be \(H,W,3\) or \(H,W\)/);
    bad({ imgs: ndarray('uint8', [4, 5]) }, 3, /must be \(D,H,W\)/);
    bad(
      { imgs: ndarray('float32', [2, 2], [0, 1, 2, 256]) },
      2,
      /values must lie in \[0, 255\], got \[0, 256\]/,
    );
    bad({ imgs: ndarray('int16', [2, 2], [0, -1, 2, 3]) }, 2, /\[0, 255\]/);
    bad({ imgs: ndarray('float32', [2, 2], [0, NaN, 2, 3]) }, 2, /NaN/);
    expect(validateChallengeCase({ imgs: ndarray('float64', [2, 2], [0, 1, 255, 3]) }, 2).imgs.dtype).toBe(
      'float64',
    );
  });
  it('gts shape and dtype', () => {
    bad(
      { imgs: img2, gts: ndarray('uint8', [4, 4]) },
      2,
      /'gts' shape \[4, 4\] does not match the image's \[4, 5\]/,
    );
    bad({ imgs: img2, gts: ndarray('float32', [4, 5]) }, 2, /integer label map/);
    bad({ imgs: ndarray('uint8', [2, 4, 5]), gts: ndarray('uint8', [4, 5]) }, 3, /does not match/);
  });
  it('boxes: shape, inverted, empty, out of bounds, non-finite', () => {
    bad({ imgs: img2, boxes: box([0, 0, 1, 1, 2, 2], 6) }, 2, /must be \(N,4\)/);
    bad({ imgs: img2, boxes: box([3, 0, 1, 2]) }, 2, /inverted \(x_max < x_min\)/);
    bad({ imgs: img2, boxes: box([0, 2, 3, 2]) }, 2, /empty \(y_max = y_min\)/);
    bad({ imgs: img2, boxes: box([0, 0, 6, 3]) }, 2, /out of bounds \(x must lie in \[0, 5\]\)/);
    bad({ imgs: img2, boxes: box([-1, 0, 3, 3]) }, 2, /out of bounds/);
    bad({ imgs: img2, boxes: ndarray('float32', [1, 4], [0, 0, NaN, 3]) }, 2, /non-finite/);
    const vol = ndarray('uint8', [3, 4, 5]);
    bad({ imgs: vol, boxes: box([0, 0, 2, 3, 3, 1], 6) }, 3, /inverted \(z_max < z_min\)/);
    bad({ imgs: vol, boxes: box([0, 0, 0, 3, 3, 4], 6) }, 3, /z must lie in \[0, 3\]/);
    expect(validateChallengeCase({ imgs: vol, boxes: box([0, 0, 0, 5, 4, 3], 6) }, 3).boxes!.shape).toEqual([
      1, 6,
    ]);
  });
  it('spacing', () => {
    bad(
      { imgs: ndarray('uint8', [2, 2, 2]), spacing: ndarray('float64', [2], [1, 1]) },
      3,
      /'spacing' must hold 3/,
    );
    bad({ imgs: ndarray('uint8', [2, 2, 2]), spacing: ndarray('float64', [3], [1, 0, 1]) }, 3, /positive/);
  });
  it('readChallengeCase names the file', async () => {
    const f = path.join(tmp, '2D_CT_bad.npz');
    await writeNpzFile(f, { imgs: ndarray('uint8', [4, 5, 3]), boxes: box([3, 0, 1, 2]) });
    await expect(readChallengeCase(f)).rejects.toThrow(
      new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: box 0`),
    );
  });
});

describe('boxesFromLabels and writeSegs', () => {
  it('tight boxes, max inclusive, ascending label ids', () => {
    const g = ndarray('uint8', [4, 5], [0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0, 1, 1]);
    const { labels, boxes } = boxesFromLabels(g);
    expect(labels).toEqual([1, 2]);
    expect(Array.from(boxes.data, Number)).toEqual([3, 2, 4, 3, 1, 1, 2, 2]);
    const v = ndarray('uint16', [2, 2, 3], [0, 0, 0, 0, 0, 300, 0, 0, 0, 300, 0, 0]);
    const b3 = boxesFromLabels(v);
    expect(b3.labels).toEqual([300]);
    expect(Array.from(b3.boxes.data, Number)).toEqual([0, 1, 0, 2, 1, 1]);
  });
  it('agrees with the boxes of every shared npz', async () => {
    for (const n of [
      '3D_CT_totalsegmentator_tests_ct.npz',
      '2D_XRay_covid-cxr-seg_generalblockchain_ARDSSevere.npz',
    ]) {
      const a = await readNpzFile(sharedPath(`data/npz/${n}`));
      expect(boxesFromLabels(a.gts).boxes.data).toEqual(a.boxes.data);
    }
  });
  it('writes uint8 segs, uint16 beyond 255 boxes, and refuses values above the box count', async () => {
    const f = path.join(tmp, 'segs.npz');
    const s = ndarray('int32', [2, 2], [0, 1, 2, 255]);
    await writeSegs(f, s, 255);
    const a = (await readNpzFile(f)).segs;
    expect(a.dtype).toBe('uint8');
    expect(Array.from(a.data as Uint8Array)).toEqual([0, 1, 2, 255]);
    await writeSegs(f, ndarray('int32', [1, 2, 2], [0, 256, 300, 1]), 300);
    expect((await readNpzFile(f)).segs.dtype).toBe('uint16');
    await expect(writeSegs(f, s, 3)).rejects.toThrow(/value 255 at index 3/);
    await expect(writeSegs(f, ndarray('uint8', [2]), 3)).rejects.toBeInstanceOf(InputError);
  });
});
