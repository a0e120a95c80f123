import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchNorm2d, initBackend, nn, tf } from '@mcp-medsam/core';
import { McpMedsam, TINY } from '@mcp-medsam/model';
import type { Trace } from '../src/index.js';
import {
  buildOnnx,
  DECODER_INPUTS,
  DECODER_OUTPUTS,
  exampleDecoderInputs,
  exampleImage,
  traceDecoder,
  traceEncoder,
} from '../src/index.js';
import { maxAbsDiff, ort, session, decoderFeeds } from './ort.js';

const TOL = 1e-4;

let model: McpMedsam;

beforeAll(async () => {
  await initBackend({ backend: 'cpu', log: null });
  nn.setInitSeed(7);
  model = new McpMedsam(TINY);
  // Non-trivial norm parameters, BatchNorm statistics and attention biases (they start constant),
  // so the BatchNorm folding and every affine term are exercised.
  let seed = 100;
  for (const [, p] of model.namedParameters()) {
    const v = p.dataSync();
    if (v.every((x) => x === v[0])) p.assign(tf.add(p, tf.randomNormal(p.shape, 0, 0.1, 'float32', seed++)));
  }
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof BatchNorm2d)) continue;
    m.setBuffer('running_mean', tf.randomNormal([m.numFeatures], 0, 0.1, 'float32', seed++));
    m.setBuffer('running_var', tf.randomUniform([m.numFeatures], 0.5, 1.5, 'float32', seed++));
  }
  model.eval();
});

afterAll(() => model?.dispose());

async function check(
  bytes: Uint8Array,
  feeds: Record<string, InstanceType<typeof ort.Tensor>>,
  expected: Record<string, tf.Tensor>,
): Promise<Record<string, number>> {
  const s = await session(bytes, true);
  const out = await s.run(feeds);
  const diffs: Record<string, number> = {};
  for (const [name, t] of Object.entries(expected)) {
    expect(Array.from(out[name].dims)).toEqual(t.shape);
    diffs[name] = maxAbsDiff(out[name].data as Float32Array, t.dataSync());
  }
  await s.release();
  return diffs;
}

const f32 = (t: tf.Tensor) => new ort.Tensor('float32', t.dataSync() as Float32Array, t.shape);

describe('image encoder (tiny)', () => {
  it('matches tfjs at batch 1 and 3 with a dynamic batch', { timeout: 600_000 }, async () => {
    const images = [exampleImage(1), exampleImage(3)];
    const runs = images.map((im) => traceEncoder(model, im));
    const built = buildOnnx(runs[0].trace, runs[1].trace, {
      name: 'encoder',
      inputs: [{ name: 'image' }],
      outputs: ['image_embeddings'],
      batches: [1, 3],
    });
    expect(built.inputs[0].shape).toEqual(['batch', 3, 256, 256]);
    expect(built.outputs[0].shape).toEqual(['batch', TINY.embedDim, 64, 64]);
    for (let i = 0; i < 2; i++) {
      const diffs = await check(
        built.bytes,
        { image: f32(images[i]) },
        { image_embeddings: runs[i].results[0] },
      );
      console.log(`encoder batch ${images[i].shape[0]}: max abs diff`, diffs, 'ops', built.ops);
      expect(diffs.image_embeddings).toBeLessThanOrEqual(TOL);
    }
    // Without graph optimisations too (the graph itself, not ORT's rewrites, must be right).
    const plain = await session(built.bytes, false);
    const out = await plain.run({ image: f32(images[0]) });
    expect(
      maxAbsDiff(out.image_embeddings.data as Float32Array, runs[0].results[0].dataSync()),
    ).toBeLessThanOrEqual(TOL);
    await plain.release();
    tf.dispose([...images, ...runs.flatMap((r) => r.results)]);
  });
});

describe('prompt decoder (tiny)', () => {
  it('matches tfjs at batch 1 and 3 with a dynamic batch', { timeout: 600_000 }, async () => {
    const inputs = [exampleDecoderInputs(model, 1), exampleDecoderInputs(model, 3)];
    const runs = inputs.map((x) => traceDecoder(model, x));
    const traces: Trace[] = runs.map((r) => r.trace);
    const built = buildOnnx(traces[0], traces[1], {
      name: 'decoder',
      inputs: DECODER_INPUTS.map((name) => ({ name, dtype: name === 'category_idx' ? 'int64' : undefined })),
      outputs: [...DECODER_OUTPUTS],
      batches: [1, 3],
    });
    expect(built.outputs.map((o) => o.shape)).toEqual([
      ['batch', 1, 256, 256],
      ['batch', 1],
    ]);
    for (let i = 0; i < 2; i++) {
      const x = inputs[i];
      const feeds = decoderFeeds(x);
      const diffs = await check(built.bytes, feeds, {
        low_res_logits: runs[i].results[0],
        iou: runs[i].results[1],
      });
      console.log(`decoder batch ${x.boxes.shape[0]}: max abs diff`, diffs, 'ops', built.ops);
      expect(diffs.low_res_logits).toBeLessThanOrEqual(TOL);
      expect(diffs.iou).toBeLessThanOrEqual(TOL);
    }
    for (const x of inputs) tf.dispose(Object.values(x));
    tf.dispose(runs.flatMap((r) => r.results));
  });
});
