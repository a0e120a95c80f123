/**
 * Test helper: how each raw source of shared/data is converted (from shared/data/SOURCES.md),
 * driven by shared/data/npz/index.csv (its `origin` column names the raw files of each case).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ConvertOptions, MaskInput } from '../src/index.js';
import { sharedPath } from '../../../test-utils/shared.js';

/** Minimal RFC 4180 CSV parser (quotes, doubled quotes, CRLF). */
export function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') q = false;
      else cell += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  if (cell || row.length) {
    row.push(cell);
    rows.push(row);
  }
  const [head, ...body] = rows.filter((r) => r.length > 1 || r[0] !== '');
  return body.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i] ?? ''])));
}

export interface IndexRow {
  npz: string;
  source: string;
  case: string;
  modality: string;
  dims: string;
  origin: string;
  notes: string;
  labels: string;
}

export function indexRows(): IndexRow[] {
  return parseCsv(readFileSync(sharedPath('data/npz/index.csv'), 'utf8')) as unknown as IndexRow[];
}

let covid: Record<string, string>[] | undefined;

/** The convertCase options that reproduce one row of index.csv (without outDir). */
export function convertOptionsFor(row: IndexRow): Omit<ConvertOptions, 'outDir'> {
  const dir = sharedPath(`data/raw/${row.source}`);
  const files = row.origin.split(';').map((s) => path.join(dir, s.trim()));
  const base = { image: files[0], modality: row.modality, name: `${row.source}_${row.case}` };
  switch (row.source) {
    case 'kvasir-seg_medsam-fork':
    case 'fundus-od_optic-disc-segmentation':
      return { ...base, masks: [files[1]], threshold: 127 }; // JPEG masks: threshold at 127
    case 'ph2_dermoscopy_skincancervariation':
    case 'drive_retina-unet-pr64':
      return { ...base, masks: [files[1]] }; // > 0
    case 'hc18_fetal-head_suraj7974':
      return { ...base, masks: [files[1]], fillHoles: true }; // ellipse outline, hole-filled
    case 'ddsm-tissue_mammogram-segmentation':
      return { ...base, labelMap: files[1], labelValues: [128, 192, 255] };
    case 'wbc_zxaoyou':
      return { ...base, labelMap: files[1], labelValues: [255, 128] };
    case 'sam-med2d_data-demo':
      return { ...base, masks: files.slice(1).map((p) => ({ path: p, name: path.basename(p, '.png') })) };
    case 'covid-cxr-seg_generalblockchain': {
      covid ??= parseCsv(readFileSync(path.join(dir, 'structure_selected.csv'), 'utf8'));
      const masks: MaskInput[] = covid
        .filter((r) => r.Filename === path.basename(files[0]))
        .map((r) => ({
          path: path.join(dir, r.Mask),
          name: r['Template Name'] || r.Class,
          offset: [Number(r.Top), Number(r.Left)] as [number, number],
        }));
      return { ...base, masks, maxFileBytes: 4_000_000 }; // "4 MB" size cap (decimal)
    }
    case 'medsam2_recist-ct-lesion':
      return base; // already a challenge npz: boxes added
    case 'totalsegmentator_tests':
      return { ...base, labelMap: files[1] };
    case 'brats2013-mr_deepmedic':
      return { ...base, labelMap: files[1], zMargin: 2 };
    default:
      throw new Error(`no conversion rule for ${row.source}`);
  }
}
