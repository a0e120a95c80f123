import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { InputError } from '@mcp-medsam/core';
import { ndarray, readChallengeCase, readNpzFile, writeNpzFile } from '@mcp-medsam/io';
import { boxBaselineSegs, overlaySlice, prepareDemoData, renderOverlay } from '../src/demo/index.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const tmp = async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'demo-parts-'));
  dirs.push(d);
  return d;
};

describe('box baseline', () => {
  test('2D: boxes filled inclusive of both ends, later boxes over earlier ones, clipped to the image', () => {
    const boxes = ndarray('int64', [2, 4], BigInt64Array.from([1, 1, 3, 2, 2, 0, 9, 1].map(BigInt)));
    const segs = boxBaselineSegs([4, 6, 3], boxes, 2);
    // prettier-ignore
    expect(Array.from(segs)).toEqual([
      0, 0, 2, 2, 2, 2,
      0, 1, 2, 2, 2, 2,
      0, 1, 1, 1, 0, 0,
      0, 0, 0, 0, 0, 0,
    ]);
  });

  test('3D: the z range is inclusive', () => {
    const boxes = ndarray('int64', [1, 6], BigInt64Array.from([0, 0, 1, 1, 0, 2].map(BigInt)));
    const segs = boxBaselineSegs([4, 1, 3], boxes, 3);
    expect(Array.from(segs)).toEqual([0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 0]);
  });
});

describe('overlay', () => {
  test('tints predictions, outlines the ground truth and draws the boxes', () => {
    const [H, W] = [8, 8];
    const imgs = ndarray('uint8', [H, W, 3], new Uint8Array(H * W * 3).fill(100));
    const segs = ndarray('uint8', [H, W]);
    segs.data[3 * W + 3] = 1;
    const gts = ndarray('uint8', [H, W]);
    for (let y = 2; y <= 5; y++) for (let x = 2; x <= 5; x++) gts.data[y * W + x] = 1;
    const boxes = ndarray('int64', [1, 4], BigInt64Array.from([1, 1, 6, 6].map(BigInt)));
    const o = renderOverlay({ imgs, dims: 2, boxes, segs, gts }).data;
    const px = (y: number, x: number) => Array.from(o.subarray((y * W + x) * 3, (y * W + x) * 3 + 3));
    expect(px(0, 0)).toEqual([100, 100, 100]);
    expect(px(1, 1)).toEqual([255, 225, 25]); // box corner
    expect(px(2, 2)).toEqual([255, 255, 255]); // gt edge
    expect(px(4, 4)).toEqual([100, 100, 100]); // gt interior, not predicted
    // (3,3) is a gt edge pixel too (its left neighbour is in, but (3,2) is an edge): check a tinted one
    segs.data[4 * W + 4] = 1;
    const o2 = renderOverlay({ imgs, dims: 2, boxes, segs }).data;
    const i = (4 * W + 4) * 3;
    expect(Array.from(o2.subarray(i, i + 3))).toEqual([
      Math.round(0.55 * 100 + 0.45 * 230),
      Math.round(0.55 * 100 + 0.45 * 25),
      Math.round(0.55 * 100 + 0.45 * 75),
    ]);
  });

  test('3D shows the middle slice of the first box', () => {
    const boxes = ndarray('int64', [1, 6], BigInt64Array.from([0, 0, 2, 3, 3, 6].map(BigInt)));
    const imgs = ndarray('uint8', [8, 4, 4]);
    for (let z = 0; z < 8; z++) imgs.data.fill(z * 10, z * 16, (z + 1) * 16);
    const input = { imgs, dims: 3 as const, boxes, segs: ndarray('uint8', [8, 4, 4]) };
    expect(overlaySlice(input)).toBe(4);
    const o = renderOverlay(input);
    expect(o.shape).toEqual([4, 4, 3]);
    expect(o.data[((1 * 4 + 1) * 3) | 0]).toBe(40); // inside the box outline: slice 4's grey
  });
});

describe('demo data from a user folder', () => {
  const case2d = (seed: number) => {
    const [H, W] = [20, 24];
    const imgs = ndarray('uint8', [H, W, 3]);
    const gts = ndarray('uint8', [H, W]);
    for (let y = 5; y < 12; y++) for (let x = 4 + (seed % 3); x < 15; x++) gts.data[y * W + x] = 1;
    for (let i = 0; i < H * W; i++) imgs.data.fill(gts.data[i] ? 200 : 30, i * 3, i * 3 + 3);
    return { imgs, gts };
  };

  test('a flat folder is split every fifth file; test cases get boxes from their labels', async () => {
    const src = await tmp();
    for (let i = 0; i < 6; i++) await writeNpzFile(path.join(src, `2D_CT_case${i}.npz`), case2d(i));
    const out = await tmp();
    const d = await prepareDemoData({ out, data: src, seed: 1, trainPerKind: 0, testPerKind: 0 });
    expect(d).toMatchObject({ source: 'user', trainCases: 5, testCases: 1 });
    expect((await readdir(d.testDir)).sort()).toEqual(['2D_CT_case4.npz']);
    expect((await readdir(d.trainDir)).length).toBe(5);
    const c = await readChallengeCase(path.join(d.testDir, '2D_CT_case4.npz'));
    expect(Array.from(c.boxes!.data as BigInt64Array, Number)).toEqual([5, 5, 14, 11]);
  });

  test('3D test cases without spacing get a unit spacing so they can be scored', async () => {
    const src = await tmp();
    await mkdir(path.join(src, 'train'));
    await mkdir(path.join(src, 'test'));
    const gts = ndarray('uint8', [3, 8, 8]);
    gts.data.fill(1, 64 + 18, 64 + 22);
    const imgs = ndarray(
      'uint8',
      [3, 8, 8],
      Uint8Array.from(gts.data, (v) => v * 200),
    );
    await writeNpzFile(path.join(src, 'train', '3D_MR_a.npz'), { imgs, gts });
    await writeNpzFile(path.join(src, 'test', '3D_MR_b.npz'), { imgs, gts });
    const d = await prepareDemoData({
      out: await tmp(),
      data: src,
      seed: 1,
      trainPerKind: 0,
      testPerKind: 0,
    });
    const arrays = await readNpzFile(path.join(d.testDir, '3D_MR_b.npz'));
    expect(Array.from(arrays.spacing.data as Float64Array)).toEqual([1, 1, 1]);
    expect(Array.from(arrays.boxes.data as BigInt64Array, Number)).toEqual([2, 2, 1, 5, 2, 1]);
  });

  test('too few cases, or test cases without labels, are input errors naming the folder or file', async () => {
    const src = await tmp();
    await writeNpzFile(path.join(src, '2D_CT_only.npz'), case2d(0));
    const fromUser = async () =>
      prepareDemoData({ out: await tmp(), data: src, seed: 1, trainPerKind: 0, testPerKind: 0 }).catch(
        (e) => e,
      );
    const err = await fromUser();
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/at least 2 npz cases/);
    expect(err.message).toContain(src);

    await writeNpzFile(path.join(src, '2D_CT_zz-nolabels.npz'), { imgs: case2d(1).imgs });
    const err2 = await fromUser();
    expect(err2).toBeInstanceOf(InputError);
    expect(err2.message).toMatch(/2D_CT_zz-nolabels\.npz.*needs 'gts'/);
  });
});
