// Prompt extensions in training: inputs derived from the samples by the batch builder, their
// gradients, and a run that draws the same inputs when stopped and resumed.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Embedding, initBackend, InputError, nn, Rng, tf, type Rng as RngT } from '@mcp-medsam/core';
import { buildTrainingSample, type TrainingSample } from '@mcp-medsam/io';
import {
  McpMedsam,
  PromptExtension,
  TINY,
  type ExtensionInputSpec,
  type HostArray,
  type PromptEncoder,
} from '@mcp-medsam/model';
import { sharedPath } from '../../../test-utils/shared.js';
import {
  batchFromSamples,
  batchGradients,
  disposeBatch,
  extensionInputs,
  extensionRng,
  forwardInputs,
  parseTrainConfig,
  train,
} from '../src/index.js';

/** Two points drawn inside the box prompt. */
class BoxPoints extends PromptExtension {
  readonly name = 'box_points';
  readonly inputs: ExtensionInputSpec[] = [{ name: 'box_xy', dtype: 'float32', shape: ['B', 'K', 2] }];
  readonly tok: Embedding;
  constructor(dim: number) {
    super();
    this.tok = this.child('tok', new Embedding(1, dim));
  }
  embed(x: Record<string, tf.Tensor>, enc: PromptEncoder): tf.Tensor {
    return tf.tidy(() => tf.add(enc.pe_layer.encodeWithCoords(x.box_xy, 256, 256), this.tok.weight));
  }
  override sampleInputs(s: TrainingSample, rng: RngT): Record<string, HostArray> {
    const [x0, y0, x1, y1] = s.box;
    const xy = Float32Array.from({ length: 4 }, (_, i) =>
      i % 2 ? rng.int(Math.ceil(y0), Math.floor(y1)) : rng.int(Math.ceil(x0), Math.floor(x1)),
    );
    return { box_xy: { data: xy, shape: [2, 2] } };
  }
}

const boxPoints = () => new BoxPoints(TINY.embedDim);

function sample(seed: number): TrainingSample {
  const [h, w] = [60, 80];
  const img = new Uint8Array(h * w * 3).map((_, i) => (i * 7) % 251);
  const gts = new Uint8Array(h * w);
  for (let y = 15; y < 40; y++) for (let x = 20 + seed; x < 50 + seed; x++) gts[y * w + x] = 1;
  return buildTrainingSample(
    {
      imgs: { dtype: 'uint8', shape: [h, w, 3], data: img },
      gts: { dtype: 'uint8', shape: [h, w], data: gts },
    },
    '2D_CT_synthetic.npz',
    new Rng(seed),
  );
}

let samples: TrainingSample[];
const clip = new Float32Array(2 * 512).fill(0.05);

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
  samples = [sample(1), sample(2)];
});

describe('batches for prompt extensions', () => {
  it('stay as they were without extensions', () => {
    const b = batchFromSamples(samples, clip, clip);
    expect('extra' in b).toBe(false);
    expect('extra' in forwardInputs(b)).toBe(false);
    disposeBatch(b);
  });

  it('take the inputs from sampleInputs, stacked, deterministic for a seed, and disposed with the batch', () => {
    nn.setInitSeed(1);
    const model = new McpMedsam(TINY, { promptExtensions: [boxPoints] });
    const extensions = model.promptExtensions;
    const before = tf.memory().numTensors;
    const b = batchFromSamples(samples, clip, clip, { extensions, rng: extensionRng(2024, 7) });
    const xy = b.extra!.box_xy;
    expect(xy.shape).toEqual([2, 2, 2]);
    expect(forwardInputs(b).extra).toBe(b.extra);
    const again = extensionInputs(samples, { extensions, rng: extensionRng(2024, 7) });
    const other = extensionInputs(samples, { extensions, rng: extensionRng(2024, 8) });
    expect(Array.from(again.box_xy.dataSync())).toEqual(Array.from(xy.dataSync()));
    expect(Array.from(other.box_xy.dataSync())).not.toEqual(Array.from(xy.dataSync()));
    xy.dataSync().forEach((v, i) => {
      const box = samples[Math.floor(i / 4)].box;
      expect(v).toBeGreaterThanOrEqual(box[i % 2] - 1);
      expect(v).toBeLessThanOrEqual(box[2 + (i % 2)] + 1);
    });
    tf.dispose([...Object.values(again), ...Object.values(other)]);
    disposeBatch(b);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('name the extension when it cannot give its inputs', () => {
    class Ragged extends BoxPoints {
      override sampleInputs(s: TrainingSample, rng: RngT) {
        const k = s === samples[0] ? 1 : 2;
        return { box_xy: { data: new Float32Array(2 * k).fill(rng.int(0, 9)), shape: [k, 2] } };
      }
    }
    const rng = new Rng(1);
    const dim = TINY.embedDim;
    const noSampling = Object.assign(new BoxPoints(dim), { sampleInputs: undefined });
    expect(() => extensionInputs(samples, { extensions: [noSampling], rng })).toThrow(
      /prompt extension 'box_points' has no sampleInputs/,
    );
    expect(() => extensionInputs(samples, { extensions: [new Ragged(dim)], rng })).toThrow(InputError);
    expect(() => extensionInputs(samples, { extensions: [new Ragged(dim)], rng })).toThrow(
      /'box_points', input 'box_xy': sampleInputs gave shape \(2,2\) for sample 1/,
    );
  });

  it('give the extension parameters gradients', () => {
    nn.setInitSeed(2);
    const model = new McpMedsam(TINY, { promptExtensions: [boxPoints] }).train();
    const b = batchFromSamples(samples.slice(0, 1), clip.subarray(0, 512), clip.subarray(0, 512), {
      extensions: model.promptExtensions,
      rng: new Rng(3),
    });
    const { loss, grads } = batchGradients(model, b);
    expect(Number.isFinite(loss.total)).toBe(true);
    const g = grads.get('prompt_encoder.extensions.box_points.tok.weight');
    expect(g).toBeDefined();
    expect(Math.max(...Array.from(g!.dataSync(), Math.abs))).toBeGreaterThan(0);
    tf.dispose([...grads.values()]);
    disposeBatch(b);
    model.dispose();
  });
});

describe('train with a prompt extension', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'trainer-ext-'));
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('draws the same extension inputs after a resume as without a stop, and validates', async () => {
    const config = (out: string, extra = {}) =>
      parseTrainConfig({
        preset: 'tiny',
        data: sharedPath('data/npz'),
        out,
        steps: 2,
        batchSize: 1,
        stepsPerEpoch: 2,
        workers: 0,
        gradientCheckpointing: false,
        clipVision: sharedPath('fixtures/clip-standin/vision.onnx'),
        clipText: sharedPath('fixtures/clip-standin/text-features.json'),
        progress: false,
        ...extra,
      });
    const hooks = { log: () => {}, promptExtensions: [boxPoints] };
    let dsc = NaN;
    const full = await train(
      config(path.join(tmp, 'a'), { validation: { data: sharedPath('data/npz'), maxCases: 2 } }),
      {
        ...hooks,
        onEpoch: (_e, _l, _lr, v) => (dsc = v!.dsc),
      },
    );
    expect(dsc).toBeGreaterThanOrEqual(0);
    const b = path.join(tmp, 'b');
    const first = await train(config(b), { ...hooks, shouldStop: () => true });
    expect(first.steps).toBe(1);
    const resumed = await train(config(b, { resume: true }), hooks);
    expect(resumed.stepLosses).toEqual(full.stepLosses);
  }, 300_000);
});
