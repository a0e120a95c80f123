import { describe, expect, it } from 'vitest';
import { InputError } from '@mcp-medsam/core';
import { ndarray } from '@mcp-medsam/io';
import { StandinClipVision, standinTextTable } from '@mcp-medsam/prompts';
import { MedsamPredictor } from '../src/index.js';
import { readBoxes } from '../src/case_input.js';
import { StubEngine } from './stub_engine.js';

const rows = (k: 4 | 6, ...r: number[][]) =>
  ndarray('int64', [r.length, k], BigInt64Array.from(r.flat(), BigInt));

describe('readBoxes', () => {
  it('reads integer rows', () => {
    expect(readBoxes(rows(4, [1, 2, 30, 40]), 4, { w: 30, h: 40 })).toEqual([[1, 2, 30, 40]]);
  });

  it.each([
    [[5, 2, 4, 9], /box 0 \[5, 2, 4, 9\] is inverted \(x_max < x_min\)/],
    [[5, 2, 5, 9], /box 0 \[5, 2, 5, 9\] is empty \(x_max = x_min\)/],
    [[0, 0, 31, 9], /out of bounds \(x must lie in \[0, 30\]\)/],
    [[-1, 0, 3, 9], /out of bounds \(x must lie in \[0, 30\]\)/],
  ])('2D box %j is an InputError naming the case', (box, message) => {
    const call = () => readBoxes(rows(4, box), 4, { w: 30, h: 40 }, 'case.npz');
    expect(call).toThrow(InputError);
    expect(call).toThrow(message);
    expect(call).toThrow(/case\.npz/);
  });

  it('3D: z_max may equal the slice count (the original never reads it), z_min may not', () => {
    expect(readBoxes(rows(6, [0, 0, 3, 8, 8, 5]), 6, { w: 8, h: 8, d: 5 })).toEqual([[0, 0, 3, 8, 8, 5]]);
    expect(() => readBoxes(rows(6, [0, 0, 5, 8, 8, 5]), 6, { w: 8, h: 8, d: 5 })).toThrow(
      /z_min must be below the slice count 5/,
    );
    expect(() => readBoxes(rows(6, [0, 0, 1, 8, 8, 6]), 6, { w: 8, h: 8, d: 5 })).toThrow(
      /z must lie in \[0, 5\]/,
    );
    expect(() => readBoxes(rows(6, [0, 0, 3, 8, 8, 2]), 6, { w: 8, h: 8, d: 5 })).toThrow(
      /inverted \(z_max < z_min\)/,
    );
  });

  it('rejects non-integer boxes and wrong widths', () => {
    expect(() => readBoxes(ndarray('float32', [1, 4], [1, 2, 3.5, 4]), 4, { w: 9, h: 9 })).toThrow(
      /must hold integers/,
    );
    expect(() => readBoxes(rows(6, [0, 0, 0, 1, 1, 1]), 4, { w: 9, h: 9 })).toThrow(
      /'boxes' must be \(N,4\)/,
    );
  });
});

describe('3D boxes reaching the last slice', () => {
  const [D, H, W] = [6, 64, 64];
  const imgs = ndarray('uint8', [D, H, W]);
  for (let z = 0; z < D; z++)
    for (let y = 10; y < 50; y++) for (let x = 10; x < 50; x++) imgs.data[(z * H + y) * W + x] = 220;
  const predictor = () => new MedsamPredictor(new StubEngine(), new StandinClipVision(), standinTextTable());

  it('z_max = D: the default skips it as the original; --inclusive-z stops at the last slice', async () => {
    const boxes = rows(6, [8, 8, 2, 52, 52, D]);
    const base = await predictor().segment({ imgs, boxes, modality: 'CT', dims: 3 });
    expect(Math.max(...base.calls.map((c) => c.z!))).toBe(D - 1);
    expect(Math.min(...base.calls.map((c) => c.z!))).toBe(3);
    const incl = await predictor().segment({ imgs, boxes, modality: 'CT', dims: 3 }, { inclusiveZ: true });
    expect(incl.calls.map((c) => c.z).sort()).toEqual([2, 3, 4, 5]);
  });
});
