import { describe, expect, it } from 'vitest';
import type { Modality } from '@mcp-medsam/core/common';
import {
  createSampler,
  modalityBalanced,
  uniformCases,
  uniformSlices,
  weighted,
  type CaseEntry,
  type Sampler,
  type SamplerKind,
} from '@mcp-medsam/samplers';

function entry(name: string, modality: Modality, labelsPerSlice: number[][]): CaseEntry {
  return {
    file: `/x/${name}.npz`,
    name,
    modality,
    categoryIdx: 0,
    dims: labelsPerSlice.length > 1 ? 3 : 2,
    slices: labelsPerSlice.length,
    labelsPerSlice,
    size: 1,
    mtimeMs: 1,
  };
}

const ENTRIES: CaseEntry[] = [
  entry('ct_vol', 'CT', [[], [1], [1, 2], [], [3]]),
  ...Array.from({ length: 9 }, (_, i) => entry(`endo_${i}`, 'Endoscopy', [[1]])),
  entry('mr_a', 'MR', [[1]]),
  entry('mr_empty', 'MR', [[]]),
  entry('us_a', 'US', [[2]]),
];

const KINDS: SamplerKind[] = ['modality-balanced', 'uniform-cases', 'uniform-slices', 'weighted'];
const make = (kind: SamplerKind, seed = 3): Sampler =>
  createSampler(kind, ENTRIES, { seed, weights: { CT: 1, Endoscopy: 2, MR: 0.5, US: 0 } });
const draw = (s: Sampler, n: number) => Array.from({ length: n }, () => s.next());

describe('samplers', () => {
  for (const kind of KINDS) {
    it(`${kind}: deterministic, only foreground slices, resumable from JSON state`, () => {
      expect(draw(make(kind), 50)).toEqual(draw(make(kind), 50));
      expect(draw(make(kind, 4), 50)).not.toEqual(draw(make(kind), 50));
      const s = make(kind);
      for (const d of draw(s, 500)) {
        expect(ENTRIES[d.caseIndex].labelsPerSlice[d.slice].length).toBeGreaterThan(0);
        expect(ENTRIES[d.caseIndex].name).not.toBe('mr_empty');
      }
      const a = make(kind);
      draw(a, 100);
      const saved = JSON.parse(JSON.stringify(a.state()));
      const rest = draw(a, 50);
      const b = make(kind, 999);
      b.restore(saved);
      expect(draw(b, 50)).toEqual(rest);
      expect(b.state()).toEqual(a.state());
    });
  }

  it('modality-balanced draws each present modality about equally', () => {
    const s = modalityBalanced(ENTRIES, { seed: 1 });
    const counts = new Map<string, number>();
    const n = 20000;
    for (const d of draw(s, n)) {
      const m = ENTRIES[d.caseIndex].modality;
      counts.set(m, (counts.get(m) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['CT', 'Endoscopy', 'MR', 'US']);
    for (const c of counts.values()) expect(Math.abs(c / n - 0.25)).toBeLessThan(0.02);
    // uniform over the 3 foreground slices of the CT volume
    const ct = draw(modalityBalanced(ENTRIES, { seed: 2 }), n).filter((d) => d.caseIndex === 0);
    for (const sl of [1, 2, 4])
      expect(Math.abs(ct.filter((d) => d.slice === sl).length / ct.length - 1 / 3)).toBeLessThan(0.04);
  });

  it('uniform-cases and uniform-slices weigh cases and slices', () => {
    const n = 20000;
    const uc = draw(uniformCases(ENTRIES, { seed: 1 }), n).filter((d) => d.caseIndex === 0).length / n;
    expect(Math.abs(uc - 1 / 12)).toBeLessThan(0.01); // 12 cases with foreground
    const us = draw(uniformSlices(ENTRIES, { seed: 1 }), n).filter((d) => d.caseIndex === 0).length / n;
    expect(Math.abs(us - 3 / 14)).toBeLessThan(0.015); // 3 of 14 foreground slices
  });

  it('weighted follows the weights and never draws a zero-weight modality', () => {
    const n = 20000;
    const ds = draw(weighted(ENTRIES, { CT: 1, Endoscopy: 2, MR: 1 }, { seed: 5 }), n);
    const frac = (m: string) => ds.filter((d) => ENTRIES[d.caseIndex].modality === m).length / n;
    expect(frac('US')).toBe(0);
    expect(Math.abs(frac('Endoscopy') - 0.5)).toBeLessThan(0.02);
    expect(Math.abs(frac('CT') - 0.25)).toBeLessThan(0.02);
    expect(() => weighted(ENTRIES, { US: 0 })).toThrow(/no positive weight/);
    expect(() => weighted(ENTRIES, { CT: -1 })).toThrow(/>= 0/);
    expect(() => weighted(ENTRIES, { Nope: 1 })).toThrow();
  });

  it('refuses a state of another kind or another index', () => {
    const s = modalityBalanced(ENTRIES);
    expect(() => uniformCases(ENTRIES).restore(s.state())).toThrow(/modality-balanced/);
    expect(() => modalityBalanced(ENTRIES.slice(1)).restore(s.state())).toThrow(/another case index/);
    expect(() => modalityBalanced([entry('e', 'CT', [[]])])).toThrow(/no case/);
  });
});
