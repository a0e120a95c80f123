/**
 * Output: a per-case CSV at full precision (shortest round-trip decimal of every double), the
 * per-modality table, and JSON.
 */
import type { ModalitySummary, OverallSummary } from './aggregate.js';

/** One scored case as reported. */
export interface CaseRow {
  case: string;
  modality: string;
  dims: number;
  dsc: number;
  nsd: number;
  iou: number;
  hd95: number;
  labels: number[];
  dscPerLabel: ArrayLike<number>;
  nsdPerLabel: ArrayLike<number>;
  iouPerLabel: ArrayLike<number>;
  hd95PerLabel: ArrayLike<number>;
}

/**
 * A number as a CSV field: the shortest decimal that reads back to the same double; NaN is an
 * empty field (as pandas writes it), ±Infinity is `inf` / `-inf`.
 */
export function formatNumber(x: number, nan = ''): string {
  if (Number.isNaN(x)) return nan;
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  return String(x);
}

/** Parses a field written by `formatNumber` (empty or `nan` is NaN). */
export function parseNumber(s: string): number {
  const t = s.trim().toLowerCase();
  if (t === '' || t === 'nan') return NaN;
  if (t === 'inf' || t === '+inf') return Infinity;
  if (t === '-inf') return -Infinity;
  return Number(t);
}

const list = (xs: ArrayLike<number>): string => Array.from(xs, (x) => formatNumber(x, 'nan')).join(' ');

export const CSV_COLUMNS = [
  'case',
  'modality',
  'dims',
  'dsc',
  'nsd',
  'iou',
  'hd95',
  'n_labels',
  'dsc_per_label',
  'nsd_per_label',
  'iou_per_label',
  'hd95_per_label',
] as const;

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The per-case CSV (header + one row per case, in the given order); per-label lists are space-separated. */
export function casesToCsv(rows: readonly CaseRow[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) {
    lines.push(
      [
        csvField(r.case),
        csvField(r.modality),
        String(r.dims),
        formatNumber(r.dsc),
        formatNumber(r.nsd),
        formatNumber(r.iou),
        formatNumber(r.hd95),
        String(r.labels.length),
        list(r.dscPerLabel),
        list(r.nsdPerLabel),
        list(r.iouPerLabel),
        list(r.hd95PerLabel),
      ].join(','),
    );
  }
  return lines.join('\n') + '\n';
}

const f4 = (x: number): string =>
  Number.isNaN(x) ? 'nan' : Number.isFinite(x) ? x.toFixed(4) : formatNumber(x);

/** The per-modality table with the macro average (mean ± population std) as the last line. */
export function formatModalityTable(byModality: readonly ModalitySummary[], overall: OverallSummary): string {
  const head = ['modality', 'cases', 'DSC', 'NSD', 'IoU', 'HD95'];
  const rows = byModality.map((m) => [m.modality, String(m.n), f4(m.dsc), f4(m.nsd), f4(m.iou), f4(m.hd95)]);
  rows.push([
    'macro avg',
    String(overall.n),
    `${f4(overall.dsc)} ± ${f4(overall.dscStd)}`,
    `${f4(overall.nsd)} ± ${f4(overall.nsdStd)}`,
    `${f4(overall.iou)} ± ${f4(overall.iouStd)}`,
    '',
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join('  ');
  return [fmt(head), width.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n') + '\n';
}

/** JSON with NaN as null and ±Infinity as the strings "inf" / "-inf"; typed arrays as arrays. */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v === 'number') {
        if (Number.isNaN(v)) return null;
        if (v === Infinity) return 'inf';
        if (v === -Infinity) return '-inf';
      }
      if (ArrayBuffer.isView(v) && !(v instanceof DataView))
        return Array.from(v as unknown as ArrayLike<number>);
      return v;
    },
    indent,
  );
}
