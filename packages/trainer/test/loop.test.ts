import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  parseTrainConfig,
  readRunCheckpoint,
  RUN_FILES,
  train,
  type StepLog,
  type TrainConfigInput,
} from '../src/index.js';
import { readCheckpointFile } from '@mcp-medsam/model';
import { sharedPath } from '../../../test-utils/shared.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'trainer-loop-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const base = (out: string, extra: Partial<TrainConfigInput> = {}) =>
  parseTrainConfig({
    preset: 'tiny',
    data: sharedPath('data/npz'),
    out,
    batchSize: 2,
    stepsPerEpoch: 2,
    epochs: 3,
    workers: 0,
    clipVision: sharedPath('fixtures/clip-standin/vision.onnx'),
    clipText: sharedPath('fixtures/clip-standin/text-features.json'),
    progress: false,
    ...extra,
  });

const logs = (out: string): StepLog[] =>
  readFileSync(path.join(out, RUN_FILES.log), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepLog);

describe('train (tiny preset, shared/data/npz, CLIP stand-in)', () => {
  it('a run stopped after a checkpoint and resumed matches an uninterrupted run step for step', async () => {
    const a = path.join(tmp, 'a');
    const full = await train(
      base(a, { steps: 5, validation: { data: sharedPath('data/npz'), maxCases: 3 } }),
      {
        log: () => {},
      },
    );
    expect(full.steps).toBe(5);
    expect(full.stepLosses.every(Number.isFinite)).toBe(true);

    const b = path.join(tmp, 'b');
    let n = 0;
    const first = await train(base(b, { steps: 5 }), { log: () => {}, shouldStop: () => ++n === 3 });
    expect(first.interrupted).toBe(true);
    expect(first.steps).toBe(3);
    const ck = await readRunCheckpoint(path.join(b, RUN_FILES.checkpoint));
    expect(ck.meta.loop.step).toBe(3);
    // a step logged after the checkpoint (as a crash would leave it) is dropped on resume
    appendFileSync(path.join(b, RUN_FILES.log), JSON.stringify({ step: 4, loss: 99 }) + '\n');
    const second = await train(base(b, { steps: 5, resume: true }), { log: () => {} });
    expect(second.stepLosses).toEqual(full.stepLosses);
    expect(second.steps).toBe(5);

    const la = logs(a);
    const lb = logs(b);
    expect(lb.map((l) => l.step)).toEqual([1, 2, 3, 4, 5]);
    for (const key of ['loss', 'dice', 'bce', 'iou_mse', 'sim_ce', 'cat_ce', 'lr', 'epoch'] as const)
      expect(
        lb.map((l) => l[key]),
        key,
      ).toEqual(la.map((l) => l[key]));
    // the final weights are the same, bit for bit
    const wa = await readFile(path.join(a, RUN_FILES.latest));
    const wb = await readFile(path.join(b, RUN_FILES.latest));
    expect(wb.equals(wa)).toBe(true);
    // epochs of 2 steps: the last epoch (3rd) runs at the fixed lr of 5e-5
    expect(la.map((l) => l.lr)).toEqual([2e-4, 2e-4, 2e-4, 2e-4, 5e-5]);
    // nothing half-written is left behind
    expect(readdirSync(b).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(a)).toEqual(
      expect.arrayContaining(['loss.png', 'model_best.safetensors', 'config.json']),
    );
  }, 900_000);

  it('with frozen BatchNorm, the calibrated statistics are the ones every step trains and saves with', async () => {
    const out = path.join(tmp, 'frozen');
    const logLines: string[] = [];
    await train(base(out, { steps: 2, freezeBatchNorm: true, batchNormCalibration: 3 }), {
      log: (m) => logLines.push(m),
    });
    expect(logLines).toContain('BatchNorm frozen at the statistics of 3 batches');
    const sd = (await readCheckpointFile(path.join(out, RUN_FILES.latest))).stateDict;
    const bnCounts = [...sd]
      .filter(([k]) => k.endsWith('num_batches_tracked'))
      .map(([, v]) => Number(v.data[0]));
    // Three calibration forwards, none from the two training steps.
    expect(bnCounts.length).toBe(26);
    expect(new Set(bnCounts)).toEqual(new Set([3]));
    // Calibrated, not the fresh 0 / 1.
    const mean = sd.get('image_encoder.patch_embed.seq.0.bn.running_mean')!.data as Float32Array;
    expect(mean.some((v) => v !== 0)).toBe(true);
  });
});

// The loss falling over a few hundred steps: loop-long.test.ts.

describe('parseTrainConfig', () => {
  it('names every bad option', () => {
    expect(() =>
      parseTrainConfig({
        data: 'd',
        out: 'o',
        clipVision: 'v',
        clipText: 't',
        batchSize: 0,
        presett: 'x',
        lr: 'a',
      }),
    ).toThrow(/batchSize[\s\S]*lr|lr[\s\S]*batchSize/);
    expect(() =>
      parseTrainConfig({ data: 'd', out: 'o', clipVision: 'v', clipText: 't', presett: 'x' }),
    ).toThrow(/presett/);
    expect(() => parseTrainConfig({ out: 'o', clipVision: 'v', clipText: 't' })).toThrow(/data/);
  });

  it('fills the original defaults', () => {
    const c = parseTrainConfig({ data: 'd', out: 'o', clipVision: 'v', clipText: 't' });
    expect(c).toMatchObject({
      preset: 'mcp-medsam',
      epochs: 25,
      lr: 2e-4,
      weightDecay: 1e-3,
      lastEpochLr: 5e-5,
      plateau: { factor: 0.9, patience: 5 },
      lossWeights: { dice: 1, bce: 1, iou: 1, sim: 0.01, cat: 0.01 },
      sampler: 'modality-balanced',
      seed: 2024,
    });
  });
});
