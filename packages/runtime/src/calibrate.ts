/**
 * int8 calibration: the value ranges of the decoder's convolutions on real prompts, which static
 * QLinearConv needs before it runs (exporter's onnx/static_conv.ts). A float export with probe
 * outputs segments calibration cases through the ordinary 2D and 3D pipelines, so the ranges come
 * from the inputs the decoder will see: real crops, CLIP features, modality texts and, in 3D,
 * boxes propagated from the previous slice's mask.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { InputError, MODALITIES } from '@mcp-medsam/core/common';
import { parseConvProbeName, writeStandinClip, type ConvActivationRange } from '@mcp-medsam/exporter';
import { SYNTHETIC_DIMS, SYNTHETIC_KINDS, syntheticCase } from '@mcp-medsam/io';
import { OnnxClipVision, TextFeatureTable } from '@mcp-medsam/prompts';
import { OnnxEngine } from './onnx_engine.js';
import { listNpzCases, readCaseInput } from './case_files.js';
import { MedsamPredictor, type CaseInput } from './predictor.js';

/** Where calibration prompts come from. */
export interface CalibrationOptions {
  /**
   * A directory of challenge npz cases with `boxes` (the test layout). Default: the synthetic
   * cases `@mcp-medsam/io` generates (CT, MR volume, ultrasound, endoscopy, dermoscopy,
   * microscopy; seeds 0 and 1), plus one 2D synthetic image under each other modality's prompt,
   * so that every modality's conditioning of the decoder is measured.
   */
  data?: string;
  /** Use at most this many cases of `data`, in sorted order (default 16). */
  maxCases?: number;
  /**
   * The CLIP image tower (ONNX) and text table (JSON) the export will be used with; default the
   * seeded stand-in. Real CLIP features move the decoder's activations, so pass them when you
   * have them.
   */
  clipVision?: string;
  clipText?: string;
  /** onnxruntime threads (default: onnxruntime's). */
  threads?: number;
  log?: (line: string) => void;
}

/** What calibration saw, for the manifest. */
export interface CalibrationSummary {
  source: string;
  clip: 'stand-in' | 'given';
  cases: number;
  /** Cases that could not be read or segmented (named in the log); calibration went on without them. */
  skipped: number;
  decoderRuns: number;
}

/** Synthetic seeds used by default: two cases of each kind. */
const DEFAULT_SEEDS = [0, 1];
const DEFAULT_MAX_CASES = 16;

/** A calibration case, or why one could not be read. */
type CalibrationCase = CaseInput | { error: Error; file: string };

async function* calibrationCases(options: CalibrationOptions): AsyncGenerator<CalibrationCase> {
  if (options.data === undefined) {
    for (const seed of DEFAULT_SEEDS)
      for (const kind of SYNTHETIC_KINDS) {
        const c = syntheticCase(kind, seed);
        yield { imgs: c.imgs, boxes: c.boxes, modality: kind, dims: c.dims, file: c.name };
      }
    const images2d = SYNTHETIC_KINDS.filter((k) => SYNTHETIC_DIMS[k] === 2);
    const others = MODALITIES.filter((m) => !(SYNTHETIC_KINDS as readonly string[]).includes(m));
    for (const [i, modality] of others.entries()) {
      const c = syntheticCase(images2d[i % images2d.length], 0);
      yield { imgs: c.imgs, boxes: c.boxes, modality, dims: 2, file: `${c.name} as ${modality}` };
    }
    return;
  }
  const names = (await listNpzCases(options.data, 'calibration directory')).slice(
    0,
    options.maxCases ?? DEFAULT_MAX_CASES,
  );
  for (const name of names) {
    const file = path.join(options.data, name);
    try {
      yield await readCaseInput(file, name);
    } catch (e) {
      yield { error: e as Error, file };
    }
  }
}

/** Running minimum and maximum of each probe output. */
class RangeTracker {
  readonly #lo = new Map<number, Float64Array>();
  readonly #hi = new Map<number, Float64Array>();
  runs = 0;

  observe(outputs: Record<string, Ort.Tensor>): void {
    this.runs++;
    for (const [name, t] of Object.entries(outputs)) {
      const p = parseConvProbeName(name);
      if (!p) continue;
      const side = p.side === 'input' ? 0 : 1;
      const lo = this.#at(this.#lo, p.k, Infinity);
      const hi = this.#at(this.#hi, p.k, -Infinity);
      const d = t.data as Float32Array;
      let a = lo[side];
      let b = hi[side];
      for (let i = 0; i < d.length; i++) {
        const v = d[i];
        if (v < a) a = v;
        if (v > b) b = v;
      }
      lo[side] = a;
      hi[side] = b;
    }
  }

  #at(m: Map<number, Float64Array>, k: number, init: number): Float64Array {
    let v = m.get(k);
    if (!v) m.set(k, (v = new Float64Array([init, init])));
    return v;
  }

  ranges(): ConvActivationRange[] {
    const n = this.#lo.size;
    return Array.from({ length: n }, (_, k) => {
      const lo = this.#lo.get(k);
      const hi = this.#hi.get(k);
      if (!lo || !hi) throw new Error(`calibration saw no values of convolution ${k}`);
      return { input: [lo[0], hi[0]], output: [lo[1], hi[1]] };
    });
  }
}

/**
 * Segments the calibration cases with the probed float export in `probeDir` and returns the
 * observed range of every candidate convolution's input and output, in candidate order.
 */
export async function calibrateDecoderConvs(
  probeDir: string,
  options: CalibrationOptions = {},
): Promise<{ ranges: ConvActivationRange[]; summary: CalibrationSummary }> {
  if ((options.clipVision === undefined) !== (options.clipText === undefined))
    throw new InputError('calibration needs both the CLIP image tower and the text table, or neither');
  const tracker = new RangeTracker();
  const scratch = options.clipVision ? undefined : await mkdtemp(path.join(tmpdir(), 'mcp-medsam-calib-'));
  try {
    const clip = scratch
      ? await writeStandinClip(scratch)
      : { vision: options.clipVision!, text: options.clipText! };
    const threads = options.threads !== undefined ? { threads: options.threads } : {};
    const engine = await OnnxEngine.load(probeDir, {
      ...threads,
      onDecoderOutputs: (out) => tracker.observe(out),
    });
    const predictor = new MedsamPredictor(
      engine,
      await OnnxClipVision.create(clip.vision, threads),
      await TextFeatureTable.fromFile(clip.text),
    );
    let cases = 0;
    const failures: string[] = [];
    try {
      for await (const c of calibrationCases(options)) {
        try {
          if ('error' in c) throw c.error;
          // All slices a 3D box reaches, end slices included: int8 must cover them too.
          await predictor.segment(c, { inclusiveZ: true });
          cases++;
          options.log?.(`[calibrate] ${c.file ?? `case ${cases}`}: ${tracker.runs} decoder runs so far`);
        } catch (e) {
          // A bad case is skipped, as inference skips it; the ranges come from the others.
          failures.push((e as Error).message);
          options.log?.(`[calibrate] skipped ${(e as Error).message}`);
        }
      }
    } finally {
      await predictor.close();
    }
    if (!cases)
      throw new InputError(`no calibration case could be used (${failures[0] ?? 'none given'})`, {
        file: options.data,
      });
    return {
      ranges: tracker.ranges(),
      summary: {
        source: options.data === undefined ? 'synthetic' : path.basename(path.resolve(options.data)),
        clip: scratch ? 'stand-in' : 'given',
        cases,
        skipped: failures.length,
        decoderRuns: tracker.runs,
      },
    };
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
