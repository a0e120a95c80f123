/**
 * Validation during training: a fixed set of samples from a directory of npz cases (one per case,
 * built with a per-case seed so every epoch sees the same ones), the model in eval mode, and the
 * challenge's DSC and NSD (tolerance 2 px) of the thresholded 256² mask against the 256² ground
 * truth. A quick signal for the loss curve, not the challenge evaluation (that is
 * `mcp-medsam evaluate` on full-resolution segmentations).
 */
import path from 'node:path';
import { Rng, tf } from '@mcp-medsam/core';
import {
  openNpzFile,
  prepareTrainingSlice,
  sampleFromPreparedSlice,
  type TrainingSample,
} from '@mcp-medsam/io';
import { dice, surfaceDiceAtTolerance, surfaceDistances2d, unionBox } from '@mcp-medsam/metrics';
import type { McpMedsam } from '@mcp-medsam/model';
import { buildCaseIndex } from '@mcp-medsam/samplers';
import { batchWithClip, disposeBatch, forwardInputs, type ClipProviders } from './batch.js';

/** Seed of the prompt extensions' inputs for validation chunk i: the same every epoch. */
const VALIDATION_EXTENSION_SEED = 0x5eed;

export interface ValidationSet {
  samples: TrainingSample[];
  /** Cases that could not give a sample, with the reason. */
  skipped: { file: string; error: string }[];
}

export interface ValidationResult {
  dsc: number;
  nsd: number;
  cases: number;
}

/** One sample per case (the middle foreground slice of 3D cases), from the case's own seed. */
export async function buildValidationSet(dir: string, maxCases = Infinity): Promise<ValidationSet> {
  const index = await buildCaseIndex(dir);
  const samples: TrainingSample[] = [];
  const skipped: ValidationSet['skipped'] = [];
  for (const [i, e] of index.entries.entries()) {
    if (samples.length >= maxCases) break;
    try {
      const npz = await openNpzFile(e.file);
      const fg = e.labelsPerSlice.map((l, z) => (l.length ? z : -1)).filter((z) => z >= 0);
      const slice = e.dims === 3 ? fg[fg.length >> 1] : 0;
      const prep = prepareTrainingSlice(
        { imgs: npz.get('imgs'), gts: npz.get('gts') },
        path.basename(e.file),
        slice,
      );
      samples.push(sampleFromPreparedSlice(prep, new Rng(BigInt(1000 + i))));
    } catch (err) {
      skipped.push({ file: e.file, error: (err as Error).message });
    }
  }
  return { samples, skipped };
}

/**
 * Mean DSC and NSD of the model (switched to eval mode and back) on a validation set. A model with
 * prompt extensions gets their inputs from the samples, drawn alike every time.
 */
export async function validate(
  model: McpMedsam,
  set: ValidationSet,
  clip: ClipProviders,
  batchSize = 4,
): Promise<ValidationResult> {
  const wasTraining = model.training;
  model.eval();
  let dscSum = 0;
  let nsdSum = 0;
  let n = 0;
  try {
    for (let i = 0; i < set.samples.length; i += batchSize) {
      const chunk = set.samples.slice(i, i + batchSize);
      const extensions = model.promptExtensions;
      const sampling = extensions.length
        ? { extensions, rng: new Rng((BigInt(VALIDATION_EXTENSION_SEED) << 32n) | BigInt(i)) }
        : undefined;
      const batch = await batchWithClip(chunk, clip, sampling);
      let logits: Float32Array;
      try {
        const out = model.forward(forwardInputs(batch));
        logits = (await out.low_res_logits.data()) as Float32Array;
        tf.dispose(Object.values(out));
      } finally {
        disposeBatch(batch);
      }
      chunk.forEach((s, k) => {
        const plane = 256 * 256;
        const pred = new Uint8Array(plane);
        for (let p = 0; p < plane; p++) pred[p] = logits[k * plane + p] > 0 ? 1 : 0;
        const gt = s.gt2D;
        const d = dice(gt, pred);
        const box = unionBox(gt, pred, [256, 256]);
        const nsd = surfaceDiceAtTolerance(
          surfaceDistances2d(gt, pred, [256, 256], 1, box, [1, 1], 'slab'),
          2,
        );
        if (Number.isFinite(d)) {
          dscSum += d;
          nsdSum += Number.isFinite(nsd) ? nsd : 0;
          n++;
        }
      });
    }
  } finally {
    model.train(wasTraining);
  }
  return { dsc: n ? dscSum / n : NaN, nsd: n ? nsdSum / n : NaN, cases: n };
}
