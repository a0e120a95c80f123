import path from 'node:path';
import type { Command } from 'commander';
import { InputError } from '@mcp-medsam/core';
import {
  type NdArray,
  labelIds,
  modalityFromFileName,
  openNpzFile,
  readImageFile,
  toFloat64,
  validateChallengeCase,
} from '@mcp-medsam/io';

/** One array of an inspected file. */
export interface InspectedArray {
  name: string;
  dtype: string;
  shape: number[];
  /** [min, max] of the values (NaN ignored); undefined for an empty array. */
  range?: [number, number];
}

/** What `mcp-medsam inspect` reports. */
export interface InspectReport {
  file: string;
  format: string;
  arrays: InspectedArray[];
  /** 2 or 3 for challenge npz files. */
  dims?: number;
  modality?: string;
  categoryIdx?: number;
  /** Label ids of `gts` (challenge npz) or of an integer image with few values (a mask). */
  labels?: number[];
  /** Rows of `boxes`. */
  boxes?: number[][];
  /** (x, y[, z]), the reverse of the array axes. */
  spacing?: number[];
  origin?: number[];
  direction?: number[];
  /** Challenge npz: 'ok' or the validation problem. */
  validation?: string;
}

function describeArray(name: string, a: NdArray): InspectedArray {
  const v = toFloat64(a);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return { name, dtype: a.dtype, shape: a.shape, range: lo <= hi ? [lo, hi] : undefined };
}

const INT = new Set(['bool', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

/** Inspect a challenge npz (any npz) or an image/volume file of a supported format. */
export async function inspectFile(file: string): Promise<InspectReport> {
  if (file.toLowerCase().endsWith('.npz')) {
    const npz = await openNpzFile(file);
    const arrays: Record<string, NdArray> = {};
    for (const n of npz.names) arrays[n] = npz.get(n);
    const report: InspectReport = {
      file,
      format: 'npz',
      arrays: Object.entries(arrays).map(([n, a]) => describeArray(n, a)),
    };
    if (!arrays.imgs) return report;
    const base = path.basename(file);
    try {
      const m = modalityFromFileName(base);
      report.modality = m.modality;
      report.categoryIdx = m.categoryIdx;
    } catch {
      report.modality = undefined;
    }
    const imgs = arrays.imgs;
    report.dims = base.startsWith('3D')
      ? 3
      : base.startsWith('2D') || imgs.shape.length !== 3 || imgs.shape[2] === 3
        ? 2
        : 3;
    if (arrays.gts) report.labels = labelIds(arrays.gts);
    if (arrays.boxes) {
      const b = arrays.boxes;
      const k = b.shape[1] ?? 0;
      const v = Array.from(toFloat64(b));
      report.boxes = Array.from({ length: b.shape[0] ?? 0 }, (_, i) => v.slice(i * k, i * k + k));
    }
    if (arrays.spacing) report.spacing = Array.from(toFloat64(arrays.spacing));
    try {
      validateChallengeCase(arrays, report.dims as 2 | 3, file);
      report.validation = report.modality ? 'ok' : 'ok (no modality in the file name)';
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      report.validation = e.message;
    }
    return report;
  }
  const im = await readImageFile(file);
  const report: InspectReport = {
    file,
    format: im.format,
    arrays: [describeArray('image', im.array)],
    spacing: im.spacing,
    origin: im.origin,
    direction: im.direction,
  };
  if (INT.has(im.array.dtype)) {
    const v = toFloat64(im.array);
    const seen = new Set<number>();
    for (let i = 0; i < v.length && seen.size <= 64; i++) if (v[i] !== 0) seen.add(v[i]);
    if (seen.size <= 64) report.labels = [...seen].sort((a, b) => a - b);
  }
  return report;
}

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, ''));

/** The report as text lines. */
export function formatInspectReport(r: InspectReport): string {
  const lines = [`file: ${r.file}`, `format: ${r.format}`];
  for (const a of r.arrays)
    lines.push(
      `${a.name}: ${a.dtype} [${a.shape.join(', ')}]${a.range ? ` range ${fmt(a.range[0])}..${fmt(a.range[1])}` : ''}`,
    );
  if (r.dims) lines.push(`dims: ${r.dims}D`);
  if (r.arrays.some((a) => a.name === 'imgs'))
    lines.push(
      `modality: ${r.modality ? `${r.modality} (category ${r.categoryIdx})` : 'unknown (name has no modality)'}`,
    );
  if (r.labels) lines.push(`labels (${r.labels.length}): ${r.labels.join(', ') || 'none'}`);
  if (r.boxes) {
    lines.push(`boxes (${r.boxes.length}):`);
    for (const b of r.boxes.slice(0, 50)) lines.push(`  [${b.map(fmt).join(', ')}]`);
    if (r.boxes.length > 50) lines.push(`  ... (${r.boxes.length - 50} more)`);
  }
  if (r.spacing)
    lines.push(`spacing (x, y${r.spacing.length > 2 ? ', z' : ''}): ${r.spacing.map(fmt).join(', ')}`);
  if (r.origin) lines.push(`origin (LPS): ${r.origin.map(fmt).join(', ')}`);
  if (r.direction) lines.push(`direction (LPS): ${r.direction.map(fmt).join(', ')}`);
  if (r.validation) lines.push(`validation: ${r.validation}`);
  return lines.join('\n');
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description(
      'show shape, dtype, value range, modality, label ids, boxes and spacing of a challenge npz or an image file (NIfTI, DICOM file or series folder, PNG, JPEG, BMP, TIFF, GIF)',
    )
    .argument('<file>', 'file (or DICOM series folder) to inspect')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const report = await inspectFile(file);
      process.stdout.write(`${o.json ? JSON.stringify(report, null, 2) : formatInspectReport(report)}\n`);
    });
}
