/**
 * Scoring of a folder of predictions against a folder of ground truths, the challenge's layout:
 * the same npz file name in both, `segs` in the prediction, `gts` (and `spacing` for 3D) in the
 * ground truth. Missing or unreadable predictions are failures; the other cases are still scored.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { MODALITIES, parseModality, InputError } from '@mcp-medsam/core/common';
import { readNpzFile, type NdArray } from '@mcp-medsam/io';
import { aggregateByModality, macroAverage, type ModalitySummary, type OverallSummary } from './aggregate.js';
import { scoreCase, type ScoreOptions } from './case.js';
import type { CaseRow } from './report.js';

export interface EvaluateOptions extends Omit<ScoreOptions, 'spacing' | 'file'> {
  predDir: string;
  gtDir: string;
  /** Called after each case (for progress output). */
  onCase?: (name: string, index: number, total: number) => void;
}

export interface CaseFailure {
  case: string;
  /** 'missing' (no prediction file), or the error code (E_FORMAT, E_INPUT, ...). */
  code: string;
  message: string;
}

export interface EvaluateResult {
  /** Scored cases, sorted by file name (as the challenge sorts its CSV). */
  cases: CaseRow[];
  failures: CaseFailure[];
  byModality: ModalitySummary[];
  overall: OverallSummary;
}

/** The modality of a challenge file name `2D_<Modality>_...` / `3D_<Modality>_...` (aliases mapped). */
export function modalityOfName(name: string): string {
  const token = path.basename(name).split('_')[1] ?? '';
  try {
    return parseModality(token);
  } catch {
    return token || 'unknown';
  }
}

function errorInfo(e: unknown): { code: string; message: string } {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    const err = e as { code: string; message?: string };
    return { code: err.code, message: err.message ?? String(e) };
  }
  return { code: 'E_UNKNOWN', message: e instanceof Error ? e.message : String(e) };
}

function need(arrays: Record<string, NdArray>, key: string, file: string): NdArray {
  const a = Object.prototype.hasOwnProperty.call(arrays, key) ? arrays[key] : undefined;
  if (!a)
    throw new InputError(`no array '${key}' (has ${Object.keys(arrays).join(', ') || 'none'})`, { file });
  return a;
}

/** Scores every `*.npz` of `gtDir` against the file of the same name in `predDir`. */
export async function evaluateDirs(options: EvaluateOptions): Promise<EvaluateResult> {
  const { predDir, gtDir, onCase, ...scoreOptions } = options;
  const names = (await readdir(gtDir)).filter((n) => n.endsWith('.npz')).sort();
  const predNames = new Set((await readdir(predDir)).filter((n) => n.endsWith('.npz')));
  const cases: CaseRow[] = [];
  const failures: CaseFailure[] = [];
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const modality = modalityOfName(name);
    try {
      if (!predNames.has(name)) {
        failures.push({ case: name, code: 'missing', message: `no prediction ${path.join(predDir, name)}` });
        continue;
      }
      const gtFile = path.join(gtDir, name);
      const predFile = path.join(predDir, name);
      const gtArrays = await readNpzFile(gtFile);
      const gts = need(gtArrays, 'gts', gtFile);
      const segs = need(await readNpzFile(predFile), 'segs', predFile);
      let spacing: number[] | undefined;
      if (gts.shape.length === 3) {
        const sp = need(gtArrays, 'spacing', gtFile);
        spacing = Array.from(sp.data as ArrayLike<number | bigint>, Number);
      }
      const s = scoreCase(gts, segs, { ...scoreOptions, spacing, file: predFile });
      cases.push({
        case: name,
        modality,
        dims: s.dims,
        dsc: s.dsc,
        nsd: s.nsd,
        iou: s.iou,
        hd95: s.hd95,
        labels: s.labels,
        dscPerLabel: s.dscPerLabel,
        nsdPerLabel: s.nsdPerLabel,
        iouPerLabel: s.iouPerLabel,
        hd95PerLabel: s.hd95PerLabel,
      });
    } catch (e) {
      failures.push({ case: name, ...errorInfo(e) });
    } finally {
      onCase?.(name, i, names.length);
    }
  }
  const byModality = aggregateByModality(cases, MODALITIES);
  return { cases, failures, byModality, overall: macroAverage(byModality) };
}
