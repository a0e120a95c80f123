import { describe, expect, it } from 'vitest';
import { InputError } from '@mcp-medsam/core';
import {
  aggregateByModality,
  casesToCsv,
  formatModalityTable,
  macroAverage,
  pairwiseSum,
  parseNumber,
  scoreCase,
  toJson,
} from '../src/index.js';

describe('aggregation', () => {
  it('per modality means, macro mean over modalities and population std (hand example)', () => {
    const byModality = aggregateByModality(
      [
        { modality: 'CT', dsc: 0.8, nsd: 0.9 },
        { modality: 'MR', dsc: 0.9, nsd: 0.5 },
        { modality: 'CT', dsc: 0.6, nsd: 0.7 },
        { modality: 'CT', dsc: NaN, nsd: 0 }, // NaN DSC skipped, its NSD (0) counts
      ],
      ['CT', 'MR'],
    );
    expect(byModality.map((m) => m.modality)).toEqual(['CT', 'MR']);
    expect(byModality[0].n).toBe(3);
    expect(byModality[0].dsc).toBeCloseTo(0.7, 15); // (0.8 + 0.6) / 2
    expect(byModality[0].nsd).toBeCloseTo(1.6 / 3, 15); // (0.9 + 0.7 + 0) / 3
    expect(byModality[0].nanDsc).toBe(1);
    const overall = macroAverage(byModality);
    expect(overall.dsc).toBeCloseTo(0.8, 15); // (0.7 + 0.9) / 2
    expect(overall.dscStd).toBeCloseTo(0.1, 15); // sqrt(((0.7-0.8)^2 + (0.9-0.8)^2) / 2)
    expect(overall.nsd).toBeCloseTo((1.6 / 3 + 0.5) / 2, 15);
    expect(overall.nsdStd).toBeCloseTo(Math.abs(1.6 / 3 - 0.5) / 2, 15);
    expect(overall.n).toBe(4);
    expect(formatModalityTable(byModality, overall)).toContain('0.8000 ± 0.1000');
  });

  it('pairwiseSum is numpy’s summation order', () => {
    const xs = Array.from({ length: 300 }, (_, i) => 1 / (i + 1));
    expect(pairwiseSum(xs)).toBeCloseTo(
      xs.reduce((a, b) => a + b, 0),
      12,
    );
    expect(pairwiseSum([])).toBe(0);
  });
});

describe('report', () => {
  it('CSV numbers round-trip exactly; NaN is empty, infinity is inf', () => {
    const csv = casesToCsv([
      {
        case: '2D_CT_x.npz',
        modality: 'CT',
        dims: 2,
        dsc: 0.1 + 0.2,
        nsd: NaN,
        iou: 1 / 3,
        hd95: Infinity,
        labels: [1, 2],
        dscPerLabel: [0.1 + 0.2, NaN],
        nsdPerLabel: [1, 0],
        iouPerLabel: [1 / 3, NaN],
        hd95PerLabel: [Infinity, 2.5],
      },
    ]);
    const [head, row] = csv.trim().split('\n');
    expect(head.split(',').slice(0, 5)).toEqual(['case', 'modality', 'dims', 'dsc', 'nsd']);
    const f = row.split(',');
    expect(parseNumber(f[3])).toBe(0.1 + 0.2);
    expect(f[4]).toBe('');
    expect(parseNumber(f[5])).toBe(1 / 3);
    expect(f[6]).toBe('inf');
    expect(f[8]).toBe('0.30000000000000004 nan');
    expect(JSON.parse(toJson({ a: NaN, b: Infinity, c: new Float64Array([1.5]) }))).toEqual({
      a: null,
      b: 'inf',
      c: [1.5],
    });
  });
});

describe('validation', () => {
  const u8 = (shape: number[]) => ({
    dtype: 'uint8',
    shape,
    data: new Uint8Array(shape.reduce((a, b) => a * b, 1)),
  });
  it('shape mismatch names the file', () => {
    expect(() => scoreCase(u8([4, 4]), u8([4, 5]), { file: 'case.npz' })).toThrow(InputError);
    expect(() => scoreCase(u8([4, 4]), u8([4, 5]), { file: 'case.npz' })).toThrow(
      /case\.npz.*prediction shape \[4, 5\] differs/,
    );
  });
  it('rejects non-integer dtypes', () => {
    const f = { dtype: 'float32', shape: [2, 2], data: new Float32Array(4) };
    expect(() => scoreCase(f, u8([2, 2]), { file: 'a.npz' })).toThrow(
      /a\.npz: ground truth has dtype float32/,
    );
    expect(() => scoreCase(u8([2, 2]), { shape: [2, 2], data: new Float64Array(4) })).toThrow(InputError);
  });
  it('rejects bad spacing, wrong dimensions and wrong sizes', () => {
    expect(() => scoreCase(u8([2, 2, 2]), u8([2, 2, 2]), { spacing: [1, 0, 1] })).toThrow(
      /spacing must be 3 finite positive/,
    );
    expect(() => scoreCase(u8([2, 2, 2]), u8([2, 2, 2]), { spacing: [1, 1] })).toThrow(InputError);
    expect(() => scoreCase(u8([2, 2, 2]), u8([2, 2, 2]), { spacing: [1, NaN, 1] })).toThrow(InputError);
    expect(() => scoreCase(u8([2]), u8([2]))).toThrow(/2D \(H, W\) or 3D/);
    expect(() => scoreCase({ dtype: 'uint8', shape: [2, 2], data: new Uint8Array(3) }, u8([2, 2]))).toThrow(
      /3 elements/,
    );
  });
  it('accepts int64 and uint16 label maps', () => {
    const gt = { dtype: 'int64', shape: [2, 2], data: BigInt64Array.from([0n, 1n, 300n, 300n]) };
    const seg = { dtype: 'uint16', shape: [2, 2], data: Uint16Array.from([0, 1, 300, 0]) };
    const s = scoreCase(gt, seg);
    expect(s.labels.length).toBe(300);
    expect(s.dscPerLabel[0]).toBe(1);
    expect(s.dscPerLabel[299]).toBeCloseTo(2 / 3, 15);
  });
});
