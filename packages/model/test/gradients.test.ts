import { beforeAll, expect, test } from 'vitest';
import { initBackend, nn, tf } from '@mcp-medsam/core';
import { McpMedsam, TINY, stepGradients, type ForwardOutputs } from '@mcp-medsam/model';
import * as ref from '../../../test-utils/reference.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
});

const lossFn = (o: ForwardOutputs) =>
  tf.addN([
    tf.mean(tf.sigmoid(o.low_res_logits)),
    tf.mean(tf.square(o.iou)),
    tf.mul(tf.mean(tf.square(o.category_logits)), 0.01),
    tf.mul(tf.sum(tf.mul(o.clip_vec, o.img_vec)), 0.01),
  ]) as tf.Scalar;

function inputs(b: number) {
  return {
    image: tf.tensor(ref.randomArray(b * 3 * 256 * 256, 61).map(Math.abs), [b, 3, 256, 256]),
    boxes: tf.tensor(
      [
        [30, 40, 150, 200],
        [10, 10, 90, 60],
      ].slice(0, b),
    ),
    clipImage: tf.tensor(ref.randomArray(b * 512, 62), [b, 512]),
    clipText: tf.tensor(ref.randomArray(b * 512, 63), [b, 512]),
    categoryIdx: tf.tensor([1, 7].slice(0, b), [b], 'int32'),
    crops: tf.tensor(ref.randomArray(b * 3 * 64 * 64, 64).map(Math.abs), [b, 3, 64, 64]),
  };
}

test('stepGradients (two phases with checkpointing, one tape without) equals one plain tape, and BatchNorm updates once', () => {
  const run = (mode: 'plain' | 'two-phase' | 'one-tape') => {
    nn.setInitSeed(9);
    const m = new McpMedsam(TINY).train().setGradientCheckpointing(mode === 'two-phase');
    const x = inputs(2);
    let loss: number;
    let grads: Map<string, Float32Array>;
    if (mode === 'plain') {
      const names = new Map(m.namedParameters().map(([k, v]) => [v.name, k]));
      const r = tf.variableGrads(() => lossFn(m.forward(x)));
      loss = r.value.dataSync()[0];
      grads = new Map(Object.entries(r.grads).map(([k, g]) => [names.get(k)!, g.dataSync() as Float32Array]));
    } else {
      const r = stepGradients(m, x, lossFn);
      loss = r.loss.dataSync()[0];
      grads = new Map([...r.grads].map(([k, g]) => [k, g.dataSync() as Float32Array]));
    }
    const bn = m.image_encoder.patch_embed.seq0.bn;
    const stats = {
      count: bn.getBuffer('num_batches_tracked').dataSync()[0],
      mean: Array.from(bn.getBuffer('running_mean').dataSync()),
    };
    m.dispose();
    return { loss, grads, stats };
  };
  const a = run('plain');
  for (const b of [run('two-phase'), run('one-tape')]) {
    expect(b.loss).toBeCloseTo(a.loss, 5);
    expect(b.stats.count).toBe(1);
    expect(ref.maxAbsDiff(b.stats.mean, a.stats.mean)).toBeLessThan(1e-6);
    expect([...b.grads.keys()].sort()).toEqual([...a.grads.keys()].sort());
    for (const [k, g] of a.grads) {
      const scale = Math.max(1e-6, ...Array.from(g, Math.abs));
      expect(ref.maxAbsDiff(b.grads.get(k)!, g) / scale, k).toBeLessThan(1e-3);
    }
  }
  // the unused prompt embeddings get no gradient at all, as in PyTorch
  expect(a.grads.has('prompt_encoder.no_mask_embed.weight')).toBe(false);
});
