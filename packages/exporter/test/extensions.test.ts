// The decoder graph of a model with prompt extensions: one more input per extension input, with
// dynamic batch and symbolic sizes, against tfjs at sizes the export was not traced at.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Embedding, initBackend, nn, tf } from '@mcp-medsam/core';
import {
  McpMedsam,
  PromptExtension,
  TINY,
  type ExtensionInputSpec,
  type PromptEncoder,
} from '@mcp-medsam/model';
import { decoderInputNames, exampleDecoderInputs, exportDecoder, type DecoderTensors } from '../src/index.js';
import { decoderFeeds, maxAbsDiff, ort, session } from './ort.js';

/** K weighted taps (PE of (x, y) times a weight, plus a learned token); `fixed` adds a (B, 3) input. */
class Taps extends PromptExtension {
  readonly inputs: ExtensionInputSpec[];
  readonly tok: Embedding;
  constructor(
    readonly name: string,
    dim: number,
    readonly fixed = false,
  ) {
    super();
    this.inputs = [
      { name: `${name}_xy`, dtype: 'float32', shape: ['B', 'K', 2] },
      { name: `${name}_w`, dtype: 'float32', shape: ['B', 'K'] },
      ...(fixed ? [{ name: `${name}_bias`, dtype: 'float32' as const, shape: ['B', 3] }] : []),
    ];
    this.tok = this.child('tok', new Embedding(1, dim));
  }
  embed(x: Record<string, tf.Tensor>, enc: PromptEncoder): tf.Tensor {
    return tf.tidy(() => {
      const pe = enc.pe_layer.encodeWithCoords(x[`${this.name}_xy`], 256, 256);
      let t = tf.add(tf.mul(pe, tf.expandDims(x[`${this.name}_w`], -1)), this.tok.weight);
      if (this.fixed) t = tf.add(t, tf.mean(x[`${this.name}_bias`]));
      return t;
    });
  }
}

let model: McpMedsam;

beforeAll(async () => {
  await initBackend({ backend: 'wasm', log: null });
  nn.setInitSeed(8);
  model = new McpMedsam(TINY, {
    promptExtensions: [(c) => new Taps('taps', c.embedDim, true), (c) => new Taps('more', c.embedDim)],
  });
  let seed = 300;
  for (const [, p] of model.namedParameters())
    p.assign(tf.add(p, tf.randomNormal(p.shape, 0, 0.2, 'float32', seed++)));
  model.eval();
});

afterAll(() => model?.dispose());

function feeds(x: DecoderTensors) {
  const f = decoderFeeds(x);
  for (const [name, t] of Object.entries(x.extra!))
    f[name] = new ort.Tensor('float32', t.dataSync() as Float32Array, t.shape);
  return f;
}

it('adds the extension inputs with a dynamic batch and symbolic sizes, and matches tfjs', async () => {
  const built = exportDecoder(model);
  expect(built.inputs.map((i) => i.name)).toEqual(decoderInputNames(model));
  expect(built.inputs.slice(6).map((i) => [i.name, i.shape])).toEqual([
    ['taps_xy', ['batch', 'taps_K', 2]],
    ['taps_w', ['batch', 'taps_K']],
    ['taps_bias', ['batch', 3]],
    ['more_xy', ['batch', 'more_K', 2]],
    ['more_w', ['batch', 'more_K']],
  ]);
  const s = await session(built.bytes, true);
  // Batch and point counts the export was not traced at (it used batch 1, 2 and K 2, 3).
  for (const [b, k1, k2] of [
    [3, 5, 1],
    [1, 1, 4],
  ]) {
    const x = exampleDecoderInputs(model, b, { taps: { K: k1 }, more: { K: k2 } });
    const out = await s.run(feeds(x));
    const ref = tf.tidy(() => {
      const d = model.decode(tf.transpose(x.imageEmbeddings, [0, 2, 3, 1]), x);
      return [d.lowResLogits, d.iou];
    });
    expect(Array.from(out.low_res_logits.dims)).toEqual([b, 1, 256, 256]);
    const diff = maxAbsDiff(out.low_res_logits.data as Float32Array, ref[0].dataSync());
    console.log(`decoder with extensions, batch ${b}, K ${k1} and ${k2}: max abs diff ${diff}`);
    expect(diff).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(out.iou.data as Float32Array, ref[1].dataSync())).toBeLessThanOrEqual(1e-4);
    tf.dispose([...ref, ...Object.values(x.extra!)]);
    const { extra: _extra, ...base } = x;
    tf.dispose(Object.values(base));
  }
  await s.release();
});
