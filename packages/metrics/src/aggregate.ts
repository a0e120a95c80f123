/**
 * Aggregation as published: per modality the mean over its cases, then the macro average over
 * the modality means with the population standard deviation (ddof 0) across modalities. NaN case
 * values are skipped (pandas' `mean()` of the challenge CSV, where NaN is an empty field).
 */
import { nanMean, nanStd } from './numeric.js';

/** The per-case values aggregation needs. */
export interface CaseValues {
  modality: string;
  dsc: number;
  nsd: number;
  iou?: number;
  hd95?: number;
}

export interface ModalitySummary {
  modality: string;
  /** Cases of this modality. */
  n: number;
  dsc: number;
  nsd: number;
  iou: number;
  /** Mean over the cases with a finite HD95. */
  hd95: number;
  /** Cases whose DSC is NaN (skipped in the means). */
  nanDsc: number;
}

export interface OverallSummary {
  /** Number of modalities and cases. */
  modalities: number;
  n: number;
  /** Macro averages over modality means and their population std across modalities. */
  dsc: number;
  dscStd: number;
  nsd: number;
  nsdStd: number;
  iou: number;
  iouStd: number;
}

function finiteMean(xs: number[]): number {
  return nanMean(xs.filter((x) => Number.isFinite(x)));
}

/** Per-modality means, in first-seen modality order unless `order` (e.g. MODALITIES) is given. */
export function aggregateByModality(
  cases: readonly CaseValues[],
  order?: readonly string[],
): ModalitySummary[] {
  const groups = new Map<string, CaseValues[]>();
  for (const c of cases) {
    let g = groups.get(c.modality);
    if (!g) groups.set(c.modality, (g = []));
    g.push(c);
  }
  let keys = [...groups.keys()];
  if (order) {
    const rank = (m: string): number => {
      const i = order.indexOf(m);
      return i < 0 ? order.length : i;
    };
    keys = keys.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  }
  return keys.map((modality) => {
    const g = groups.get(modality)!;
    return {
      modality,
      n: g.length,
      dsc: nanMean(g.map((c) => c.dsc)),
      nsd: nanMean(g.map((c) => c.nsd)),
      iou: nanMean(g.map((c) => c.iou ?? NaN)),
      hd95: finiteMean(g.map((c) => c.hd95 ?? NaN)),
      nanDsc: g.filter((c) => Number.isNaN(c.dsc)).length,
    };
  });
}

/** Macro average over the modality means, with the population std across modalities. */
export function macroAverage(byModality: readonly ModalitySummary[]): OverallSummary {
  const pick = (k: 'dsc' | 'nsd' | 'iou'): number[] => byModality.map((m) => m[k]);
  return {
    modalities: byModality.length,
    n: byModality.reduce((a, m) => a + m.n, 0),
    dsc: nanMean(pick('dsc')),
    dscStd: nanStd(pick('dsc')),
    nsd: nanMean(pick('nsd')),
    nsdStd: nanStd(pick('nsd')),
    iou: nanMean(pick('iou')),
    iouStd: nanStd(pick('iou')),
  };
}
