/** The synthetic multi-modality cases: determinism, layout, label sanity, box-likeness, contrast. */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, Rng } from '@mcp-medsam/core';
import {
  boxFillDice,
  buildTrainingSample,
  modalityFromFileName,
  type NdArray,
  ndarray,
  readChallengeCase,
  readNpzFile,
  rngChoices,
  SYNTHETIC_KINDS,
  SYNTHETIC_TARGETS,
  syntheticCase,
  type SyntheticCase,
  type SyntheticKind,
  validateChallengeCase,
  writeNpzFile,
  writeSyntheticDataset,
} from '../src/index.js';

const SEEDS = [0, 1, 2, 3, 4, 5];
const cases = new Map<SyntheticKind, SyntheticCase[]>();

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'io-synthetic-'));
  for (const kind of SYNTHETIC_KINDS)
    cases.set(
      kind,
      SEEDS.map((s) => syntheticCase(kind, s)),
    );
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The raw bytes of an array, for exact comparisons (toEqual on big typed arrays is slow). */
function bytesOf(a: NdArray): Buffer {
  return Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
}

/** Spatial shape as [D, H, W] (D = 1 for 2D) and the number of image channels. */
function geometry(c: SyntheticCase): { d: number; h: number; w: number; ch: number } {
  const s = c.gts.shape;
  return s.length === 2 ? { d: 1, h: s[0], w: s[1], ch: 3 } : { d: s[0], h: s[1], w: s[2], ch: 1 };
}

/** Tight box of `label`, recomputed: [x0, y0, z0, x1, y1, z1] (inclusive) and its voxel count. */
function tightBox(c: SyntheticCase, label: number): { box: number[]; count: number } {
  const { d, h, w } = geometry(c);
  const g = c.gts.data as Uint8Array;
  const box = [Infinity, Infinity, Infinity, -1, -1, -1];
  let count = 0;
  for (let z = 0; z < d; z++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        if (g[(z * h + y) * w + x] !== label) continue;
        count++;
        box[0] = Math.min(box[0], x);
        box[1] = Math.min(box[1], y);
        box[2] = Math.min(box[2], z);
        box[3] = Math.max(box[3], x);
        box[4] = Math.max(box[4], y);
        box[5] = Math.max(box[5], z);
      }
  return { box, count };
}

function labelsOf(c: SyntheticCase): number[] {
  let max = 0;
  for (const v of c.gts.data as Uint8Array) max = Math.max(max, v);
  return Array.from({ length: max }, (_, i) => i + 1);
}

/**
 * Mean colour of a label and of the ring 2..6 pixels (chessboard distance, in-plane) outside it.
 * Returns the Euclidean distance between the two means (grey images count once per channel, so
 * a grey difference of Δ gives Δ·√3 for 2D and Δ for 3D).
 */
function contrast(c: SyntheticCase, label: number): number {
  const { d, h, w, ch } = geometry(c);
  const g = c.gts.data as Uint8Array;
  const img = c.imgs.data as Uint8Array;
  const inside = new Float64Array(ch);
  const ring = new Float64Array(ch);
  let nIn = 0;
  let nRing = 0;
  const dist = new Uint8Array(h * w);
  const queue = new Int32Array(h * w);
  for (let z = 0; z < d; z++) {
    const o = z * h * w;
    dist.fill(255);
    let head = 0;
    let tail = 0;
    for (let i = 0; i < h * w; i++)
      if (g[o + i] === label) {
        dist[i] = 0;
        queue[tail++] = i;
        nIn++;
        for (let k = 0; k < ch; k++) inside[k] += img[(o + i) * ch + k];
      }
    while (head < tail) {
      const i = queue[head++];
      if (dist[i] >= 6) continue;
      const y = Math.floor(i / w);
      const x = i % w;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
          const j = yy * w + xx;
          if (dist[j] !== 255) continue;
          dist[j] = dist[i] + 1;
          queue[tail++] = j;
        }
    }
    for (let i = 0; i < h * w; i++)
      if (dist[i] >= 2 && dist[i] <= 6) {
        nRing++;
        for (let k = 0; k < ch; k++) ring[k] += img[(o + i) * ch + k];
      }
  }
  let s = 0;
  for (let k = 0; k < ch; k++) s += (inside[k] / nIn - ring[k] / nRing) ** 2;
  return Math.sqrt(s);
}

describe('syntheticCase', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    for (const kind of SYNTHETIC_KINDS) {
      const a = syntheticCase(kind, 3);
      const b = cases.get(kind)![3];
      expect(bytesOf(a.imgs).equals(bytesOf(b.imgs))).toBe(true);
      expect(bytesOf(a.gts).equals(bytesOf(b.gts))).toBe(true);
      expect(a.boxes.data).toEqual(b.boxes.data);
      expect(a.name).toBe(b.name);
      const c = cases.get(kind)![4];
      const same = c.imgs.shape.join() === a.imgs.shape.join() && bytesOf(c.imgs).equals(bytesOf(a.imgs));
      expect(same).toBe(false);
    }
  });

  it('gives the challenge shapes, dtypes and names per kind', () => {
    for (const kind of SYNTHETIC_KINDS)
      for (const [k, c] of cases.get(kind)!.entries()) {
        expect(c.kind).toBe(kind);
        expect(c.imgs.dtype).toBe('uint8');
        expect(c.gts.dtype).toBe('uint8');
        expect(c.boxes.dtype).toBe('int64');
        if (kind === 'MR') {
          expect(c.dims).toBe(3);
          const [d, h, w] = c.imgs.shape;
          expect(c.imgs.shape).toHaveLength(3);
          expect(d).toBeGreaterThanOrEqual(12);
          expect(d).toBeLessThanOrEqual(20);
          for (const s of [h, w]) expect(s >= 160 && s <= 224).toBe(true);
          expect(c.gts.shape).toEqual(c.imgs.shape);
          expect(c.boxes.shape[1]).toBe(6);
          expect(c.spacing?.dtype).toBe('float64');
          expect(Array.from(c.spacing!.data as Float64Array).every((v) => v > 0)).toBe(true);
          expect(c.name).toBe(`3D_MR_synthetic-${SEEDS[k]}`);
        } else {
          expect(c.dims).toBe(2);
          const [h, w, ch] = c.imgs.shape;
          expect(ch).toBe(3);
          for (const s of [h, w]) expect(s >= 200 && s <= 400).toBe(true);
          expect(c.gts.shape).toEqual([h, w]);
          expect(c.boxes.shape[1]).toBe(4);
          expect(c.spacing).toBeUndefined();
          expect(c.name).toBe(`2D_${kind}_synthetic-${SEEDS[k]}`);
        }
        const { modality, dims } = modalityFromFileName(`${c.name}.npz`);
        expect(modality).toBe(kind);
        expect(c.modality).toBe(kind);
        expect(dims).toBe(c.dims);
      }
  });

  it('uses a varied size per case and honours explicit sizes', () => {
    const sizes = new Set(cases.get('CT')!.map((c) => c.imgs.shape.join('x')));
    expect(sizes.size).toBeGreaterThan(3);
    expect(syntheticCase('US', 1, { height: 256, width: 320 }).imgs.shape).toEqual([256, 320, 3]);
    expect(syntheticCase('MR', 1, { depth: 8, height: 160, width: 176 }).imgs.shape).toEqual([8, 160, 176]);
  });

  it('labels 1..n are all present, large enough and named', () => {
    for (const kind of SYNTHETIC_KINDS)
      for (const c of cases.get(kind)!) {
        const labels = labelsOf(c);
        expect(labels.length).toBeGreaterThan(0);
        expect(c.structures).toHaveLength(labels.length);
        expect(c.boxes.shape[0]).toBe(labels.length);
        const { d, h, w } = geometry(c);
        const g = c.gts.data as Uint8Array;
        // Pixels of each label in each slice (volumes: every slice a label appears in holds enough).
        const perSlice = Array.from({ length: d }, () => new Array<number>(labels.length + 1).fill(0));
        for (let z = 0; z < d; z++) for (let i = z * h * w; i < (z + 1) * h * w; i++) perSlice[z][g[i]]++;
        for (const l of labels) {
          const total = perSlice.reduce((sum, row) => sum + row[l], 0);
          expect(total, `${c.name} label ${l}`).toBeGreaterThanOrEqual(SYNTHETIC_TARGETS.minPixels);
          perSlice.forEach((row, z) => {
            if (row[l] > 0) expect(row[l], `${c.name} label ${l} slice ${z}`).toBeGreaterThanOrEqual(150);
          });
        }
        if (kind === 'Microscopy') expect(c.structures.every((s) => s === 'cell')).toBe(true);
      }
  });

  it('boxes are the tight bounds of the labels', () => {
    for (const kind of SYNTHETIC_KINDS)
      for (const c of cases.get(kind)!) {
        const k = c.dims === 2 ? 4 : 6;
        const rows = Array.from(c.boxes.data as BigInt64Array, Number);
        for (const l of labelsOf(c)) {
          const { box } = tightBox(c, l);
          const want = c.dims === 2 ? [box[0], box[1], box[3], box[4]] : box;
          expect(rows.slice((l - 1) * k, l * k), `${c.name} label ${l}`).toEqual(want);
        }
      }
  });

  it('targets are not box-like: box-fill DSC within the intended range', () => {
    const seen: Record<string, [number, number]> = {};
    for (const kind of SYNTHETIC_KINDS)
      for (const c of cases.get(kind)!) {
        const [lo, hi] = c.dims === 2 ? SYNTHETIC_TARGETS.boxFillDice2d : SYNTHETIC_TARGETS.boxFillDice3d;
        const dices = labelsOf(c).map((l) => {
          const { box, count } = tightBox(c, l);
          const vol = (box[3] - box[0] + 1) * (box[4] - box[1] + 1) * (box[5] - box[2] + 1);
          return (2 * count) / (count + vol);
        });
        expect(boxFillDice(c.gts)).toEqual(dices.map((x) => expect.closeTo(x, 12)));
        for (const dsc of dices) {
          expect(dsc, c.name).toBeGreaterThanOrEqual(lo);
          expect(dsc, c.name).toBeLessThanOrEqual(hi);
          const s = (seen[kind] ??= [1, 0]);
          seen[kind] = [Math.min(s[0], dsc), Math.max(s[1], dsc)];
        }
      }
    // The constants themselves keep targets well away from boxes (a box scores 1).
    expect(SYNTHETIC_TARGETS.boxFillDice2d[1]).toBeLessThanOrEqual(0.8);
    expect(Object.keys(seen)).toHaveLength(SYNTHETIC_KINDS.length);
  });

  it('targets differ clearly from the ring just outside them', () => {
    for (const kind of SYNTHETIC_KINDS)
      for (const c of cases.get(kind)!)
        for (const l of labelsOf(c)) {
          // 2D distances are over three channels (a grey difference Δ counts Δ·√3, so 35 ≈ 20
          // grey levels); volumes have one channel.
          const min = c.dims === 2 ? 35 : 25;
          expect(contrast(c, l), `${c.name} label ${l} (${c.structures[l - 1]})`).toBeGreaterThan(min);
        }
  });

  it('passes the challenge validation and round-trips through npz', async () => {
    for (const kind of SYNTHETIC_KINDS) {
      const c = cases.get(kind)![0];
      const arrays = {
        imgs: c.imgs,
        gts: c.gts,
        boxes: c.boxes,
        ...(c.spacing ? { spacing: c.spacing } : {}),
      };
      expect(() => validateChallengeCase(arrays, c.dims, c.name)).not.toThrow();
      const file = path.join(tmp, `${c.name}.npz`);
      await writeNpzFile(file, arrays);
      const back = await readNpzFile(file);
      for (const [key, arr] of Object.entries(arrays)) {
        expect(back[key].dtype).toBe(arr.dtype);
        expect(back[key].shape).toEqual(arr.shape);
        expect(bytesOf(back[key]).equals(bytesOf(arr)), key).toBe(true);
      }
      const read = await readChallengeCase(file);
      expect(read.modality).toBe(kind);
      expect(read.dims).toBe(c.dims);
      expect(read.boxes?.shape).toEqual(c.boxes.shape);
    }
  });

  it('feeds the training-sample builder of every modality', () => {
    for (const kind of SYNTHETIC_KINDS) {
      const c = cases.get(kind)![0];
      // A volume's sample comes from the middle slice of label 1, which is labelled.
      const zMid = c.dims === 3 ? Number((c.boxes.data[2] + c.boxes.data[5]) / 2n) : 0;
      const choices = { ...rngChoices(new Rng(5)), slice: () => zMid };
      const sample = buildTrainingSample({ imgs: c.imgs, gts: c.gts }, `${c.name}.npz`, choices, {
        crop224: false,
      });
      expect(sample.categoryIdx).toBe(c.categoryIdx);
      expect(sample.text).toBe(`${kind} Image`);
      expect(sample.gt2D.some((v) => v === 1)).toBe(true);
    }
  });

  it('rejects bad kinds, seeds and sizes with InputError', () => {
    const bad = [
      () => syntheticCase('PET' as SyntheticKind, 1),
      () => syntheticCase('CT', -1),
      () => syntheticCase('CT', 1.5),
      () => syntheticCase('CT', 1, { height: 50 }),
      () => syntheticCase('CT', 1, { width: 300.5 }),
      () => syntheticCase('CT', 1, { depth: 10 }),
      () => syntheticCase('MR', 1, { depth: 2 }),
    ];
    for (const f of bad) expect(f).toThrow(InputError);
    expect(() => syntheticCase('PET' as SyntheticKind, 1)).toThrow(
      /unknown synthetic kind "PET" \(known: CT, MR/,
    );
    expect(() => syntheticCase('CT', -1)).toThrow(/seed must be a non-negative integer, got -1/);
    expect(() => syntheticCase('CT', 1, { height: 50 })).toThrow(
      /height must be an integer in \[128, 1024\]/,
    );
    expect(() => boxFillDice(ndarray('float32', [4, 4]))).toThrow(InputError);
    expect(() => boxFillDice(ndarray('uint8', [2, 2, 2, 2]))).toThrow(/expected \(H,W\) or \(D,H,W\)/);
  });
});

describe('writeSyntheticDataset', () => {
  it('writes train (imgs, gts) and test (imgs, gts, boxes) cases that read back as challenge cases', async () => {
    const out = path.join(tmp, 'dataset');
    const kinds: SyntheticKind[] = ['Microscopy', 'MR'];
    const ds = await writeSyntheticDataset(out, { seed: 10, trainPerKind: 2, testPerKind: 1, kinds });
    expect(ds.trainDir).toBe(path.join(out, 'train'));
    expect(ds.testDir).toBe(path.join(out, 'test'));
    expect(ds.train.map((f) => path.basename(f))).toEqual([
      '2D_Microscopy_synthetic-10.npz',
      '2D_Microscopy_synthetic-11.npz',
      '3D_MR_synthetic-10.npz',
      '3D_MR_synthetic-11.npz',
    ]);
    expect(ds.test.map((f) => path.basename(f))).toEqual([
      '2D_Microscopy_synthetic-12.npz',
      '3D_MR_synthetic-12.npz',
    ]);
    expect((await readdir(ds.trainDir)).sort()).toEqual(ds.train.map((f) => path.basename(f)).sort());
    for (const file of ds.train) {
      const a = await readNpzFile(file);
      expect(Object.keys(a).sort()).toEqual(
        file.includes('3D_') ? ['gts', 'imgs', 'spacing'] : ['gts', 'imgs'],
      );
      expect(modalityFromFileName(file).modality).toBe(path.basename(file).split('_')[1]);
    }
    for (const file of ds.test) {
      const c = await readChallengeCase(file);
      expect(c.gts).toBeDefined();
      expect(c.boxes?.shape[0]).toBeGreaterThan(0);
      if (c.dims === 3) expect(c.spacing).toHaveLength(3);
    }
    // The files hold exactly the cases syntheticCase makes.
    const same = syntheticCase('Microscopy', 12);
    const back = await readNpzFile(ds.test[0]);
    expect(bytesOf(back.imgs).equals(bytesOf(same.imgs))).toBe(true);
    expect(bytesOf(back.gts).equals(bytesOf(same.gts))).toBe(true);
    expect(bytesOf(back.boxes).equals(bytesOf(same.boxes))).toBe(true);
  });

  it('rejects bad options with InputError before writing anything', async () => {
    const out = path.join(tmp, 'never');
    await expect(writeSyntheticDataset(out, { trainPerKind: -1 })).rejects.toThrow(InputError);
    await expect(writeSyntheticDataset(out, { testPerKind: 1.5 })).rejects.toThrow(
      /testPerKind must be a non-negative integer/,
    );
    await expect(writeSyntheticDataset(out, { kinds: ['CT', 'XRay' as SyntheticKind] })).rejects.toThrow(
      /unknown synthetic kind "XRay"/,
    );
    await expect(writeSyntheticDataset(out, { seed: -3 })).rejects.toThrow(InputError);
    await expect(readdir(out)).rejects.toThrow();
  });
});
