import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readNpzFile, writeNpzFile, type NdArray } from '@mcp-medsam/io';
import { casesToCsv, evaluateDirs, parseNumber } from '../src/index.js';
import { sharedPath } from '../../../test-utils/shared.js';

const FIX = sharedPath('fixtures/metrics');
const CASES = [
  '2D_Endoscopy_01_erode3.npz',
  '3D_CT_21_shift_dz1_dx2.npz',
  '2D_XRay_15_empty.npz',
  '3D_MR_24_dilate1.npz',
];
const tmp = mkdtempSync(path.join(tmpdir(), 'metrics-eval-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('evaluateDirs', () => {
  it('scores matching files, reports missing and corrupt predictions, writes a full-precision CSV', async () => {
    const gtDir = path.join(tmp, 'gts');
    const predDir = path.join(tmp, 'segs');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(gtDir);
    mkdirSync(predDir);
    const expected = new Map<string, { dsc: number; nsd: number }>();
    for (const name of CASES) {
      const z = await readNpzFile(path.join(FIX, name));
      const gt: Record<string, NdArray> = { gts: z.gt };
      if (z.gt.shape.length === 3) gt.spacing = z.spacing;
      await writeNpzFile(path.join(gtDir, name), gt, { compress: true });
      await writeNpzFile(path.join(predDir, name), { segs: z.seg });
      expected.set(name, { dsc: Number(z.dsc.data[0]), nsd: Number(z.nsd.data[0]) });
    }
    // A ground truth without prediction, and a corrupt prediction.
    copyFileSync(path.join(gtDir, CASES[0]), path.join(gtDir, '2D_US_missing.npz'));
    copyFileSync(path.join(gtDir, CASES[0]), path.join(gtDir, '2D_Fundus_corrupt.npz'));
    writeFileSync(path.join(predDir, '2D_Fundus_corrupt.npz'), Buffer.from('PK\x03\x04 this is not a zip'));

    const r = await evaluateDirs({ predDir, gtDir });
    expect(r.failures.map((f) => f.case).sort()).toEqual(['2D_Fundus_corrupt.npz', '2D_US_missing.npz']);
    expect(r.failures.find((f) => f.case === '2D_US_missing.npz')!.code).toBe('missing');
    expect(r.failures.find((f) => f.case === '2D_Fundus_corrupt.npz')!.code).toBe('E_FORMAT');
    expect(r.cases.map((c) => c.case)).toEqual([...CASES].sort());
    for (const c of r.cases) {
      const e = expected.get(c.case)!;
      expect(Math.abs(c.dsc - e.dsc)).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(c.nsd - e.nsd)).toBeLessThanOrEqual(1e-6);
    }
    expect(r.byModality.map((m) => m.modality)).toEqual(['CT', 'MR', 'Endoscopy', 'XRay']);
    expect(r.overall.modalities).toBe(4);

    const csvPath = path.join(tmp, 'metrics.csv');
    writeFileSync(csvPath, casesToCsv(r.cases));
    const lines = readFileSync(csvPath, 'utf8').trim().split('\n');
    expect(lines.length).toBe(1 + CASES.length);
    const header = lines[0].split(',');
    for (const line of lines.slice(1)) {
      const f = line.split(',');
      const c = r.cases.find((x) => x.case === f[0])!;
      expect(f[header.indexOf('modality')]).toBe(c.modality);
      expect(parseNumber(f[header.indexOf('dsc')])).toBe(c.dsc); // full precision: exact round trip
      expect(parseNumber(f[header.indexOf('nsd')])).toBe(c.nsd);
    }
  });
});
