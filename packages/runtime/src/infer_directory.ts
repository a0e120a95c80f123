/**
 * A directory of challenge npz cases in, one `segs` npz per case and `efficiency.csv` out, as the
 * challenge's inference script does. A case that fails is reported and the others go on.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MedsamError } from '@mcp-medsam/core/common';
import { writeSegs } from '@mcp-medsam/io';
import type { Pipeline3DOptions } from './pipeline_3d.js';
import { listNpzCases, readCaseInput } from './case_files.js';
import type { MedsamPredictor } from './predictor.js';

/** Options of {@link inferDirectory}. */
export interface InferDirectoryOptions extends Omit<Pipeline3DOptions, 'file' | 'keepLogits'> {
  input: string;
  output: string;
  predictor: MedsamPredictor;
  log?: (line: string) => void;
}

/** What happened to one case. */
export interface CaseReport {
  /** File name (with .npz). */
  name: string;
  ok: boolean;
  /** Wall time of reading, segmenting and writing the case. */
  seconds: number;
  dims?: 2 | 3;
  boxes?: number;
  /** Seconds per pipeline stage. */
  stages?: Record<string, number>;
  error?: string;
}

/** The challenge's per-case timing file. */
export function efficiencyCsv(cases: readonly CaseReport[]): string {
  return 'case,time\n' + cases.map((c) => `${c.name},${c.seconds.toFixed(4)}`).join('\n') + '\n';
}

function describe(e: unknown): string {
  if (e instanceof MedsamError) return e.message;
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Segment every `*.npz` of `input` in sorted order (as the original does) into `output`. */
export async function inferDirectory(options: InferDirectoryOptions): Promise<CaseReport[]> {
  const { input, output, predictor } = options;
  const log = options.log ?? (() => undefined);
  const names = await listNpzCases(input, 'input directory');
  await mkdir(output, { recursive: true });
  const reports: CaseReport[] = [];
  for (const [i, name] of names.entries()) {
    const file = path.join(input, name);
    const t0 = performance.now();
    try {
      const c = await readCaseInput(file, name);
      const result = await predictor.segment(c, options);
      await writeSegs(path.join(output, name), result.segs, c.boxes.shape[0]);
      const seconds = (performance.now() - t0) / 1000;
      reports.push({
        name,
        ok: true,
        seconds,
        dims: c.dims,
        boxes: c.boxes.shape[0],
        stages: result.seconds,
      });
      const n = c.boxes.shape[0];
      log(`[${i + 1}/${names.length}] ${name}: ${n} box${n === 1 ? '' : 'es'}, ${seconds.toFixed(2)} s`);
    } catch (e) {
      const seconds = (performance.now() - t0) / 1000;
      reports.push({ name, ok: false, seconds, error: describe(e) });
      log(`[${i + 1}/${names.length}] ${name}: FAILED (${describe(e)})`);
    }
  }
  await writeFile(path.join(output, 'efficiency.csv'), efficiencyCsv(reports.filter((r) => r.ok)));
  return reports;
}
