import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNpzFile, type NdArray } from '@mcp-medsam/io';
import { scoreCase } from '../src/index.js';
import { sharedPath } from '../../../test-utils/shared.js';

const DIR = sharedPath('fixtures/metrics');
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.npz'))
  .sort();

const num = (a: NdArray): number[] => Array.from(a.data as ArrayLike<number>, Number);

/** Equal within 1e-6, with NaN and ±Infinity matched exactly. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const a = actual[i];
    if (Number.isNaN(e) || !Number.isFinite(e)) expect(a, `${what}[${i}]`).toBe(e);
    else expect(Math.abs(a - e), `${what}[${i}]: ${a} vs ${e}`).toBeLessThanOrEqual(1e-6);
  }
}

describe('challenge fixtures (fixtures/metrics)', () => {
  it('has the 31 cases', () => {
    expect(FILES.length).toBe(31);
  });

  for (const file of FILES) {
    it(file, async () => {
      const z = await readNpzFile(path.join(DIR, file));
      const is3d = z.gt.shape.length === 3;
      const spacing = num(z.spacing);
      const score = scoreCase(z.gt, z.seg, { spacing: is3d ? spacing : undefined, file });
      expect(score.labels).toEqual(num(z.label_ids));
      expectClose([score.dsc], [num(z.dsc)[0]], 'dsc');
      expectClose([score.nsd], [num(z.nsd)[0]], 'nsd');
      expectClose(score.dscPerLabel, num(z.dsc_per_label), 'dsc_per_label');
      expectClose(score.nsdPerLabel, num(z.nsd_per_label), 'nsd_per_label');
      expectClose(score.hd95PerLabel, num(z.hd95_per_label), 'hd95_per_label');
      expectClose(score.iouPerLabel, num(z.iou_per_label), 'iou_per_label');
      if (is3d) {
        const rev = scoreCase(z.gt, z.seg, { spacing, spacingOrder: 'xyz', file });
        expectClose([rev.nsd], [num(z.nsd_spacing_reversed)[0]], 'nsd_spacing_reversed');
      }
    });
  }
});
