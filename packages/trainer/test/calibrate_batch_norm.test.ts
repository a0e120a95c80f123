import { beforeAll, expect, test } from 'vitest';
import { InputError, initBackend, nn, tf } from '@mcp-medsam/core';
import { McpMedsam, TINY } from '@mcp-medsam/model';
import { calibrateBatchNorm } from '@mcp-medsam/trainer';
import * as ref from '../../../test-utils/reference.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
});

function inputs(seed: number) {
  return {
    image: tf.tensor(ref.randomArray(3 * 256 * 256, seed).map(Math.abs), [1, 3, 256, 256]),
    boxes: tf.tensor([[30 + seed, 40, 150, 200]]),
    clipImage: tf.tensor(ref.randomArray(512, seed + 1), [1, 512]),
    clipText: tf.tensor(ref.randomArray(512, seed + 2), [1, 512]),
    categoryIdx: tf.tensor([seed % 11], [1], 'int32'),
    crops: tf.tensor(ref.randomArray(3 * 64 * 64, seed + 3).map(Math.abs), [1, 3, 64, 64]),
  };
}

function bnStats(model: McpMedsam): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, m] of model.namedModules())
    if (m instanceof nn.BatchNorm2d)
      for (const b of ['running_mean', 'running_var'])
        out.set(`${name}.${b}`, m.getBuffer(b).dataSync() as Float32Array);
  return out;
}

test('the running statistics become the average over the batches; the model is left as it was', async () => {
  nn.setInitSeed(5);
  const model = new McpMedsam(TINY).eval();
  nn.freezeBatchNorm(model);
  const [a, b] = [inputs(10), inputs(20)];
  expect(await calibrateBatchNorm(model, [a])).toBe(1);
  const sa = bnStats(model);
  await calibrateBatchNorm(model, [b]);
  const sb = bnStats(model);
  await calibrateBatchNorm(model, [a, b]);
  const both = bnStats(model);
  expect(both.size).toBe(2 * 26);
  // Only layers before any other BatchNorm see the same input in every pass: the first ones.
  for (const key of [
    'image_encoder.patch_embed.seq.0.bn.running_mean',
    'image_encoder.patch_embed.seq.0.bn.running_var',
  ]) {
    const want = sa.get(key)!.map((v, i) => (v + sb.get(key)![i]) / 2);
    expect(ref.maxAbsDiff(both.get(key)!, want)).toBeLessThan(1e-6);
  }
  expect(model.training).toBe(false);
  for (const [, m] of model.namedModules())
    if (m instanceof nn.BatchNorm2d) expect([m.frozen, m.momentum]).toEqual([true, 0.1]);
  // Frozen BatchNorm: train mode computes what eval mode computes.
  const run = () => tf.tidy(() => model.forward(inputs(30)).low_res_logits.dataSync() as Float32Array);
  const evalOut = run();
  model.train();
  expect(ref.maxAbsDiff(run(), evalOut)).toBeLessThan(1e-5);
  tf.dispose([...Object.values(a), ...Object.values(b)]);
  model.dispose();
});

test('no batch is an InputError', async () => {
  nn.setInitSeed(5);
  const model = new McpMedsam(TINY);
  await expect(calibrateBatchNorm(model, [])).rejects.toThrow(InputError);
  model.dispose();
});
