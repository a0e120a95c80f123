/**
 * `convertCase` reproduces every npz of shared/data/npz from the raw files of shared/data/raw,
 * array for array (dtype, shape and every value), with the rules of shared/data/SOURCES.md
 * (see convert-cases.ts for the per-source options). Plus unit tests of the intensity and mask
 * helpers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '@mcp-medsam/core';
import {
  CT_WINDOW_PRESETS,
  type NdArray,
  challengeFileName,
  convertCase,
  fillHoles,
  ndarray,
  parseWindow,
  percentileSorted,
  percentileToUint8,
  readChallengeCase,
  readNpzFile,
  removeSmallComponents,
  toRgb8,
  windowToUint8,
  writePngFile,
} from '../src/index.js';
import { sharedPath } from '../../../test-utils/shared.js';
import { convertOptionsFor, indexRows } from './convert-cases.js';

let out: string;
beforeAll(async () => {
  out = await mkdtemp(path.join(os.tmpdir(), 'io-convert-'));
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

function expectSameArray(got: NdArray, exp: NdArray, what: string) {
  expect(`${what}: ${got.dtype} [${got.shape}]`).toBe(`${what}: ${exp.dtype} [${exp.shape}]`);
  let diff = 0;
  for (let i = 0; i < exp.data.length; i++) if (got.data[i] !== exp.data[i]) diff++;
  expect(`${what}: ${diff} values differ`).toBe(`${what}: 0 values differ`);
}

describe('convertCase reproduces shared/data/npz', () => {
  const rows = indexRows();
  it('covers every npz of index.csv and every source with ground truth', () => {
    expect(rows.length).toBe(128);
    expect(new Set(rows.map((r) => r.source)).size).toBe(12); // 13 sources minus the demo without masks
  });
  for (const row of rows) {
    it(
      row.npz,
      async () => {
        const r = await convertCase({ ...convertOptionsFor(row), outDir: out });
        expect(path.basename(r.path)).toBe(row.npz);
        const exp = await readNpzFile(sharedPath(`data/npz/${row.npz}`));
        const written = await readNpzFile(r.path);
        expect(Object.keys(written).sort()).toEqual(Object.keys(exp).sort());
        for (const k of Object.keys(exp)) expectSameArray(written[k], exp[k], k);
        expect(r.labels.length).toBe(Number(row.labels.split(';').length));
        if (row.source.startsWith('covid'))
          expect(r.labels.map((l) => `${l.id}=${l.name}`).join('; ')).toBe(row.labels);
        // The result passes the challenge validation.
        const c = await readChallengeCase(r.path);
        expect(c.modality).toBe(row.modality);
      },
      60_000,
    );
  }
});

describe('intensity helpers', () => {
  it('window presets and W/L strings', () => {
    expect(parseWindow('ct-abdomen')).toEqual({ width: 400, level: 40 });
    expect(parseWindow('1500/-600')).toEqual({ width: 1500, level: -600 });
    expect(CT_WINDOW_PRESETS['ct-lung']).toEqual({ width: 1500, level: -600 });
    expect(() => parseWindow('ct-foot')).toThrow(InputError);
    expect(() => parseWindow({ width: 0, level: 3 })).toThrow(InputError);
  });

  it('CT windowing clips to [L-W/2, L+W/2] and scales the clipped min..max', () => {
    const a = ndarray('int16', [5], [-1000, -160, 40, 240, 3000]);
    expect(Array.from(windowToUint8(a, 'ct-abdomen').data)).toEqual([0, 0, 127, 255, 255]);
    // numpy: ((np.clip(x, -160, 240) - min) / (max - min) * 255).astype(np.uint8) with x = [0, 100]
    expect(Array.from(windowToUint8(ndarray('int16', [2], [0, 100]), 'ct-abdomen').data)).toEqual([0, 255]);
  });

  it("percentiles follow numpy's linear method; background stays 0", () => {
    const s = Float64Array.from([1, 2, 3, 4, 10]);
    expect(percentileSorted(s, 50)).toBe(3);
    expect(percentileSorted(s, 99.5)).toBeCloseTo(9.88, 12); // np.percentile([1,2,3,4,10], 99.5) (numpy 2.4)
    expect(percentileSorted(s, 0.5)).toBeCloseTo(1.02, 12);
    const mr = ndarray('float32', [6], [0, -2, 1, 2, 3, 100]);
    const u = percentileToUint8(mr, { percentiles: [0, 100] });
    expect(u.data[0]).toBe(0);
    expect(u.data[1]).toBe(0); // the minimum of the non-zero voxels
    expect(u.data[5]).toBe(255);
    const pos = percentileToUint8(mr, { percentiles: [0, 100], foreground: 'positive' });
    expect(pos.data[1]).toBe(0);
  });

  it('grey to 3 channels, alpha dropped, 16-bit min-max scaled', () => {
    expect(Array.from(toRgb8(ndarray('uint8', [1, 2], [5, 9])).data)).toEqual([5, 5, 5, 9, 9, 9]);
    expect(Array.from(toRgb8(ndarray('uint8', [1, 1, 4], [1, 2, 3, 4])).data)).toEqual([1, 2, 3]);
    expect(Array.from(toRgb8(ndarray('uint16', [1, 3], [1000, 2000, 3000])).data)).toEqual([
      0, 0, 0, 127, 127, 127, 255, 255, 255,
    ]);
  });
});

describe('mask helpers and options', () => {
  it('fills holes (4-connected background) and removes small components per label', () => {
    // 5x5 ring
    const m = Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    fillHoles(m, 5, 5);
    expect(m[12]).toBe(1);
    expect(m.reduce((a, b) => a + b, 0)).toBe(9);
    const l = Int32Array.from([1, 1, 0, 2, 1, 0, 0, 0, 3]);
    // 8-connected: the 1s form one component of 3; 2 and 3 are single pixels
    expect(removeSmallComponents(l, [3, 3], 2)).toBe(2);
    expect(Array.from(l)).toEqual([1, 1, 0, 0, 1, 0, 0, 0, 0]);
    const l4 = Int32Array.from([1, 0, 0, 1]);
    expect(removeSmallComponents(l4, [2, 2], 2, false)).toBe(2); // 4-connected: two singletons
  });

  it('names files as the challenge does and checks its inputs', async () => {
    expect(challengeFileName(2, 'X-Ray', 'a b/c')).toBe('2D_XRay_a-b-c.npz');
    expect(challengeFileName(3, 'Microscope', 'x')).toBe('3D_Microscopy_x.npz');
    const img = path.join(out, 'img.png');
    const mask = path.join(out, 'mask.png');
    await writePngFile(img, ndarray('uint8', [20, 30], new Uint8Array(600).fill(7)));
    const mk = ndarray('uint8', [20, 30]);
    for (let y = 2; y < 8; y++) for (let x = 3; x < 12; x++) mk.data[y * 30 + x] = 255;
    mk.data[19 * 30 + 29] = 255; // a 1-pixel speck, removed
    await writePngFile(mask, mk);
    const r = await convertCase({ image: img, masks: [mask], modality: 'US', name: 'toy', outDir: out });
    expect(Array.from(r.boxes.data, Number)).toEqual([3, 2, 11, 7]);
    expect(r.arrays.imgs.shape).toEqual([20, 30, 3]);
    await expect(
      convertCase({ image: img, masks: [mask], labelMap: mask, modality: 'US', name: 'toy', outDir: out }),
    ).rejects.toBeInstanceOf(InputError);
    await expect(
      convertCase({ image: img, masks: [mask], modality: 'Foot', name: 'toy', outDir: out }),
    ).rejects.toBeInstanceOf(InputError);
    const wrong = path.join(out, 'wrong.png');
    await writePngFile(wrong, ndarray('uint8', [5, 5]));
    await expect(
      convertCase({ image: img, masks: [wrong], modality: 'US', name: 't', outDir: out }),
    ).rejects.toThrow(/does not match/);
  });
});
